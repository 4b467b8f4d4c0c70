package console

import (
	"context"
	"errors"
	"image"
	_ "image/gif" // input sizes for the OCR overlay
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/webhook"
)

// Tenants never see another tenant's jobs, batches or names: every read
// of a job or batch compares the record's tenant with the session's, and
// answers "no such" for another's, as the API does.

const (
	jobsPage    = 100 // a batch page's jobs
	listBatches = 50  // batches on the list
	listFails   = 20  // recent failures on the jobs page
)

// batchRow is a batch on a page: the record and its progress.
type batchRow struct {
	*notify.Batch
	Ended int64
}

func rowOf(b *notify.Batch) batchRow {
	return batchRow{Batch: b, Ended: b.Counts.Succeeded + b.Counts.Failed + b.Counts.Canceled + b.Counts.Expired}
}

// scopeTenants is whose data a session sees: its tenant, or every tenant
// for an operator.
func (c *Console) scopeTenants(s *session) []string {
	if s.Operator {
		return c.cfg.Tenants.Names()
	}
	return []string{s.Tenant.Name}
}

func (c *Console) batches(ctx context.Context, s *session) ([]batchRow, error) {
	var all []*notify.Batch
	for _, t := range c.scopeTenants(s) {
		bs, err := notify.RecentBatches(ctx, c.cfg.Store.Redis(), t, listBatches)
		if err != nil {
			return nil, err
		}
		all = append(all, bs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].CreatedAt.After(all[j].CreatedAt) })
	out := make([]batchRow, 0, min(len(all), listBatches))
	for _, b := range all[:min(len(all), listBatches)] {
		out = append(out, rowOf(b))
	}
	return out, nil
}

func (c *Console) modelNames() []string {
	cat, err := catalog.Catalog(c.cfg.ModelsDir)
	if err != nil {
		c.log.Warn("console: model catalog", "err", err)
	}
	names := make([]string, 0, len(cat))
	for n := range cat {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *Console) batchesPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.batchesWith(w, r, s, http.StatusOK, "")
}

func (c *Console) batchesWith(w http.ResponseWriter, r *http.Request, s *session, status int, uploadErr string) {
	bs, err := c.batches(r.Context(), s)
	if err != nil {
		c.fail(w, r, s, http.StatusServiceUnavailable, err.Error())
		return
	}
	c.render(w, status, "batches", s, map[string]any{"Batches": bs, "Models": c.modelNames(),
		"UploadError": uploadErr, "Live": "/ui/batches/live"})
}

func (c *Console) batchesLive(w http.ResponseWriter, r *http.Request, s *session) {
	c.live(w, r, func(ctx context.Context) ([]fragment, error) {
		bs, err := c.batches(ctx, s)
		if err != nil {
			return nil, err
		}
		return c.fragments("batches", map[string]any{"Batches": bs, "S": s}, "batch-list")
	})
}

// upload hands a folder's files or an archive to POST /v1/batches, as
// the tenant, and goes to the new batch's page.
func (c *Console) upload(w http.ResponseWriter, r *http.Request, s *session) {
	c.submit(w, r, s, "submit_batch", "/ui/batches/", c.batchesWith)
}

// submit runs an API submit route as the session's tenant and goes to
// what it made (at prefix + id), or draws the form's page again with the
// API's refusal.
func (c *Console) submit(w http.ResponseWriter, r *http.Request, s *session, route, prefix string,
	again func(w http.ResponseWriter, r *http.Request, s *session, status int, msg string)) {
	cw := c.runAPI(w, r, route, s.Tenant)
	a := cw.answer()
	if cw.code != http.StatusAccepted || a.ID == "" {
		again(w, r, s, cw.code, a.errText(cw.code))
		return
	}
	http.Redirect(w, r, prefix+a.ID, http.StatusSeeOther)
}

// loadBatch reads a batch the session may see; nil when there is none.
func (c *Console) loadBatch(ctx context.Context, s *session, id string) (*notify.Batch, error) {
	if !validID(id) {
		return nil, nil
	}
	b, err := notify.LoadBatch(ctx, c.cfg.Store.Redis(), id)
	if errors.Is(err, notify.ErrBatchNotFound) || (err == nil && !s.Operator && b.Tenant != s.Tenant.Name) {
		return nil, nil
	}
	return b, err
}

// loadJob reads a job the session may see; nil when there is none.
func (c *Console) loadJob(ctx context.Context, s *session, id string) (*jobs.Job, error) {
	if !validID(id) {
		return nil, nil
	}
	j, err := c.cfg.Store.Get(ctx, id)
	if errors.Is(err, jobs.ErrNotFound) || (err == nil && !s.Operator && j.Tenant != s.Tenant.Name) {
		return nil, nil
	}
	return j, err
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

type batchView struct {
	Batch      batchRow
	Jobs       []*jobs.Job
	Page, Last int
}

func (c *Console) batchView(ctx context.Context, s *session, id string, page int) (*batchView, error) {
	b, err := c.loadBatch(ctx, s, id)
	if b == nil || err != nil {
		return nil, err
	}
	last := max(0, int((b.Jobs-1)/jobsPage))
	page = min(max(page, 0), last)
	ids, err := c.cfg.Store.Redis().LRange(ctx, notify.JobsKey(b.ID), int64(page*jobsPage), int64(page*jobsPage+jobsPage-1)).Result()
	if err != nil {
		return nil, err
	}
	recs, err := c.cfg.Store.GetMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i, j := range recs {
		if j == nil {
			recs[i] = &jobs.Job{ID: ids[i], Status: jobs.Expired}
		}
	}
	return &batchView{Batch: rowOf(b), Jobs: recs, Page: page, Last: last}, nil
}

func pageOf(r *http.Request) int {
	p, _ := strconv.Atoi(r.URL.Query().Get("page"))
	return max(p-1, 0)
}

func (c *Console) batchPage(w http.ResponseWriter, r *http.Request, s *session) {
	v, err := c.batchView(r.Context(), s, r.PathValue("id"), pageOf(r))
	switch {
	case err != nil:
		c.fail(w, r, s, http.StatusServiceUnavailable, err.Error())
	case v == nil:
		c.fail(w, r, s, http.StatusNotFound, "No such batch.")
	default:
		c.render(w, http.StatusOK, "batch", s, map[string]any{"B": v,
			"Live": "/ui/batches/" + v.Batch.ID + "/live?page=" + strconv.Itoa(v.Page+1)})
	}
}

func (c *Console) batchLive(w http.ResponseWriter, r *http.Request, s *session) {
	id, page := r.PathValue("id"), pageOf(r)
	c.live(w, r, func(ctx context.Context) ([]fragment, error) {
		v, err := c.batchView(ctx, s, id, page)
		if v == nil || err != nil {
			return nil, err
		}
		return c.fragments("batch", map[string]any{"B": v, "S": s}, "batch-head", "batch-jobs")
	})
}

// batchResults is GET /v1/batches/<id>/results, as a download.
func (c *Console) batchResults(w http.ResponseWriter, r *http.Request, s *session) {
	b, err := c.loadBatch(r.Context(), s, r.PathValue("id"))
	if b == nil || err != nil {
		c.fail(w, r, s, http.StatusNotFound, "No such batch.")
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+b.ID+`.ndjson"`)
	c.cfg.API.ServeAs(w, r, "batch_results", c.actor(s, b.Tenant))
}

func (c *Console) cancelBatch(w http.ResponseWriter, r *http.Request, s *session) {
	b, err := c.loadBatch(r.Context(), s, r.PathValue("id"))
	if b == nil || err != nil {
		c.fail(w, r, s, http.StatusNotFound, "No such batch.")
		return
	}
	c.cancel(w, r, s, "cancel_batch", b.Tenant, "/ui/batches/"+b.ID)
}

func (c *Console) cancelJob(w http.ResponseWriter, r *http.Request, s *session) {
	j, err := c.loadJob(r.Context(), s, r.PathValue("id"))
	if j == nil || err != nil {
		c.fail(w, r, s, http.StatusNotFound, "No such job.")
		return
	}
	c.cancel(w, r, s, "cancel", j.Tenant, "/ui/jobs/"+j.ID)
}

// cancel runs the API's cancel route as owner and goes back to the page;
// something that had already ended (409) is no error here.
func (c *Console) cancel(w http.ResponseWriter, r *http.Request, s *session, route, owner, back string) {
	cw := c.runAPI(w, r, route, c.actor(s, owner))
	if cw.code != http.StatusOK && cw.code != http.StatusConflict {
		c.fail(w, r, s, cw.code, cw.answer().errText(cw.code))
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (c *Console) jobsPage(w http.ResponseWriter, r *http.Request, s *session) {
	if id := strings.TrimSpace(r.URL.Query().Get("id")); id != "" {
		http.Redirect(w, r, "/ui/jobs/"+id, http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	var fails []*jobs.Job
	for _, t := range c.scopeTenants(s) {
		ids, err := notify.RecentFailures(ctx, c.cfg.Store.Redis(), t, listFails)
		if err == nil && len(ids) > 0 {
			var recs []*jobs.Job
			if recs, err = c.cfg.Store.GetMany(ctx, ids); err == nil {
				for _, j := range recs {
					if j != nil && j.Status == jobs.Failed {
						fails = append(fails, j)
					}
				}
			}
		}
		if err != nil {
			c.fail(w, r, s, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	sort.Slice(fails, func(i, j int) bool { return fails[i].FinishedAt.After(fails[j].FinishedAt) })
	c.render(w, http.StatusOK, "jobs", s, map[string]any{"Failures": fails[:min(len(fails), listFails)]})
}

// step is one point of a job's timeline.
type step struct {
	Name string
	At   string
	Done bool
}

func timeline(j *jobs.Job) []step {
	reached := map[jobs.State]int{jobs.Queued: 0, jobs.Scheduled: 1, jobs.Running: 2}
	at := reached[j.Status]
	if j.Status.Terminal() {
		at = 3
	}
	ended := "ended"
	if j.Status.Terminal() {
		ended = string(j.Status)
	}
	steps := []step{{"queued", fmtWhen(j.CreatedAt), true}, {"scheduled", fmtWhen(j.ScheduledAt), at >= 1},
		{"running", fmtWhen(j.StartedAt), at >= 2 && !j.StartedAt.IsZero()}, {ended, fmtWhen(j.FinishedAt), at >= 3}}
	if !steps[2].Done && at >= 3 {
		steps[2].At = "never ran"
	}
	return steps
}

func fmtWhen(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05.000")
}

func (c *Console) jobPage(w http.ResponseWriter, r *http.Request, s *session) {
	j, err := c.loadJob(r.Context(), s, r.PathValue("id"))
	switch {
	case err != nil:
		c.fail(w, r, s, http.StatusServiceUnavailable, err.Error())
		return
	case j == nil:
		c.fail(w, r, s, http.StatusNotFound, "No such job.")
		return
	}
	live := ""
	if !j.Status.Terminal() {
		live = "/ui/jobs/" + j.ID + "/live"
	}
	c.render(w, http.StatusOK, "job", s, c.jobData(r.Context(), s, j, live))
}

func (c *Console) jobData(ctx context.Context, s *session, j *jobs.Job, live string) map[string]any {
	return map[string]any{"J": j, "Timeline": timeline(j), "R": c.result(ctx, j), "Tenant": j.Tenant, "Live": live, "S": s}
}

// jobLive follows a job until it ends; then it sends nothing more (and
// reads nothing more) until the page goes.
func (c *Console) jobLive(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	var ended []fragment
	c.live(w, r, func(ctx context.Context) ([]fragment, error) {
		if ended != nil {
			return ended, nil
		}
		j, err := c.loadJob(ctx, s, id)
		if j == nil || err != nil {
			return nil, err
		}
		frags, err := c.fragments("job", c.jobData(ctx, s, j, ""), "job-body")
		if err == nil && j.Status.Terminal() {
			ended = frags
		}
		return frags, err
	})
}

// showable are the input types the console serves back to draw under
// OCR boxes: raster images only, never a type a browser would run.
var showable = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true}

// jobInput serves a job's stored input when it is a raster image.
func (c *Console) jobInput(w http.ResponseWriter, r *http.Request, s *session) {
	j, err := c.loadJob(r.Context(), s, r.PathValue("id"))
	if j == nil || err != nil || j.InputKey == "" || !showable[j.ContentType] || c.cfg.Blob == nil {
		http.NotFound(w, r)
		return
	}
	body, size, err := c.cfg.Blob.Open(r.Context(), j.InputKey)
	if errors.Is(err, blob.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, "storage is not answering", http.StatusServiceUnavailable)
		return
	}
	defer body.Close()
	w.Header().Set("Content-Type", j.ContentType)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'")
	w.Header().Set("Cache-Control", "private, max-age=300")
	_, _ = io.Copy(w, body)
}

// jobOutput serves a result stored in S3 (GET /v1/jobs/<id>/output).
func (c *Console) jobOutput(w http.ResponseWriter, r *http.Request, s *session) {
	j, err := c.loadJob(r.Context(), s, r.PathValue("id"))
	if j == nil || err != nil {
		http.NotFound(w, r)
		return
	}
	c.cfg.API.ServeAs(w, r, "job_output", c.actor(s, j.Tenant))
}

func (c *Console) webhooksPage(w http.ResponseWriter, r *http.Request, s *session) {
	fails, err := webhook.ListFailed(r.Context(), c.inspect)
	if err != nil {
		c.fail(w, r, s, http.StatusServiceUnavailable, err.Error())
		return
	}
	c.render(w, http.StatusOK, "webhooks", s, map[string]any{"Failed": fails, "Replayed": r.URL.Query().Get("replayed")})
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request, s *session) {
	n := 0
	if id := r.PostFormValue("id"); id != "" {
		if err := webhook.Replay(r.Context(), c.inspect, id); err != nil {
			c.fail(w, r, s, http.StatusNotFound, err.Error())
			return
		}
		n = 1
	} else {
		var err error
		if n, err = webhook.ReplayAll(r.Context(), c.inspect); err != nil {
			c.fail(w, r, s, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	http.Redirect(w, r, "/ui/webhooks?replayed="+strconv.Itoa(n), http.StatusSeeOther)
}

func (c *Console) modelsPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.modelsWith(w, r, s, http.StatusOK, "")
}

func (c *Console) modelsWith(w http.ResponseWriter, r *http.Request, s *session, status int, tryErr string) {
	cat, err := catalog.Catalog(c.cfg.ModelsDir)
	if err != nil {
		c.fail(w, r, s, http.StatusServiceUnavailable, err.Error())
		return
	}
	ms := make([]*catalog.Manifest, 0, len(cat))
	for _, m := range cat {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	c.render(w, status, "models", s, map[string]any{"Models": ms, "TryError": tryErr})
}

// tryModel submits one file (POST /v1/jobs) and shows its job.
func (c *Console) tryModel(w http.ResponseWriter, r *http.Request, s *session) {
	c.submit(w, r, s, "submit", "/ui/jobs/", c.modelsWith)
}

// imageSize reads the width and height of a stored raster input.
func (c *Console) imageSize(ctx context.Context, j *jobs.Job) (int, int, bool) {
	if j.InputKey == "" || !showable[j.ContentType] || c.cfg.Blob == nil {
		return 0, 0, false
	}
	body, _, err := c.cfg.Blob.Open(ctx, j.InputKey)
	if err != nil {
		return 0, 0, false
	}
	defer body.Close()
	cfg, _, err := image.DecodeConfig(body)
	if err != nil {
		return 0, 0, false
	}
	return cfg.Width, cfg.Height, true
}
