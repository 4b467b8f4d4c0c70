package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/inferq/inferq/internal/archive"
	"github.com/inferq/inferq/internal/intake"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/tenants"
)

// Batches (POST /v1/batches): many file parts, or one archive part, become
// one job each, all carrying the batch's id. The request is read in two
// phases. First every input is read by package intake (inline when small,
// else to S3 under inputs/<tenant>/<batch>/<job>); a limit broken on the
// way (a file too large, an archive that escapes or explodes, too many
// files) refuses the whole request and deletes what was stored. Then the
// batch record, the job records and their queue messages are made durable
// together (intake.Commit); a failure there undoes them all (503). So a
// 202 names exactly the jobs that exist, and a refusal leaves nothing
// behind.
//
// A file whose content type the model cannot take, or an empty one, does
// not refuse the batch: it becomes no job, and the 202 lists it under
// "refused" with its code. A batch with no acceptable file at all is
// refused (415 unsupported_content_type, or 422 empty_input).

// refusal is a file of a batch that became no job, and why.
type refusal struct {
	FileName string `json:"file_name"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

// batchAccepted is the 202 body of a batch.
type batchAccepted struct {
	ID         string    `json:"id"`
	Jobs       int       `json:"jobs"`
	Status     string    `json:"status"`
	Model      string    `json:"model"`
	Tier       string    `json:"tier"`
	CreatedAt  string    `json:"created_at"`
	StatusURL  string    `json:"status_url"`
	ResultsURL string    `json:"results_url"`
	Refused    []refusal `json:"refused"`
}

// batchFile is one input of a batch on its way to becoming a job.
type batchFile struct {
	id  string
	inp *intake.Input
}

// batchUpload gathers the inputs of one batch request.
type batchUpload struct {
	s      *Server
	ctx    context.Context
	tenant string
	id     string
	sub    *submission
	g      *intake.Gather
	files  []batchFile
	names  map[string]bool
}

func (s *Server) submitBatch(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	start := time.Now()
	ctx := r.Context()
	idem, err := s.admit(ctx, r, t)
	if err != nil {
		return err
	}
	defer idem.release(ctx)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		return errf(http.StatusUnsupportedMediaType, "unsupported_request_type", "send multipart/form-data with file parts or one archive part")
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBatchBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return errf(http.StatusBadRequest, "malformed_request", "bad multipart body: "+err.Error())
	}
	b := &batchUpload{
		s: s, ctx: ctx, tenant: t.Name, id: "b_" + jobs.NewID(), sub: newSubmission(idem),
		g: s.cfg.Intake.Gather(ctx), names: map[string]bool{},
	}
	durable := false
	defer func() { b.g.Close(durable) }()
	err = b.read(mr)
	if werr := b.g.Wait(); err == nil {
		err = werr
	}
	if err == nil && b.sub.dry {
		return idem.answer(w, b.sub.fp.sum("POST /v1/batches", b.sub))
	}
	var acc *batchAccepted
	if err == nil {
		acc, err = s.acceptBatch(ctx, t, b)
	}
	if err != nil {
		return err
	}
	durable = true
	s.m.submitted.WithLabelValues(acc.Model, acc.Tier).Add(float64(acc.Jobs))
	s.log.Info("batch accepted", "batch", acc.ID, "tenant", t.Name, "model", acc.Model, "tier", acc.Tier,
		"jobs", acc.Jobs, "refused", len(acc.Refused), "seconds", time.Since(start).Seconds())
	body, _ := json.Marshal(acc)
	if b.sub.fp != nil {
		if err := idem.commit(ctx, b.sub.fp.sum("POST /v1/batches", b.sub), http.StatusAccepted, body); err != nil {
			s.log.Warn("idempotency key not recorded", "batch", acc.ID, "tenant", t.Name, "err", err)
		}
	}
	writeRaw(w, http.StatusAccepted, body)
	return nil
}

// read walks the multipart body: fields, file parts, or one archive.
func (b *batchUpload) read(mr *multipart.Reader) error {
	hasArchive := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return b.bodyError(err)
		}
		switch part.FormName() {
		case "file":
			if hasArchive {
				return errf(http.StatusBadRequest, "malformed_request", "send file parts or one archive part, not both")
			}
			name, err := b.partName(part)
			if err != nil {
				return err
			}
			if err := b.add(name, part.Header.Get("Content-Type"), part, b.sub.fp); err != nil {
				return err
			}
		case "archive":
			if hasArchive || len(b.files) > 0 {
				return errf(http.StatusBadRequest, "malformed_request", "send file parts or one archive part, not both")
			}
			hasArchive = true
			if err := b.readArchive(part); err != nil {
				return err
			}
		default:
			if err := readField(part, b.sub); err != nil {
				return b.bodyError(err)
			}
			if part.FormName() == "model" && b.sub.model != "" && b.s.model(b.sub.model) == nil {
				return errUnknownModel(b.sub.model)
			}
		}
	}
	if len(b.files) == 0 && !(hasArchive && b.sub.dry) {
		return errf(http.StatusBadRequest, "missing_input", "a batch needs file parts or an archive part")
	}
	return nil
}

// partName is a file part's name: its file name as sent (with the folders
// a client put in it, which mime/multipart's FileName would drop), made
// safe by archive.CleanName; unnamed parts are numbered.
func (b *batchUpload) partName(part *multipart.Part) (string, error) {
	_, params, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
	raw := params["filename"]
	if raw == "" {
		raw = fmt.Sprintf("file-%06d", len(b.files)+1)
	}
	name, err := archive.CleanName(raw)
	if err != nil {
		return "", errf(http.StatusBadRequest, "invalid_file_name", err.Error())
	}
	if b.names[name] {
		return "", errf(http.StatusBadRequest, "duplicate_file_name", fmt.Sprintf("two files are named %q; each file of a batch becomes a job known by its name", name))
	}
	b.names[name] = true
	return name, nil
}

// readArchive turns each file of an archive part into a job. The
// archive's own bytes, not its entries, go into the request's
// fingerprint; a replayed request reads the archive without unpacking it.
func (b *batchUpload) readArchive(part *multipart.Part) error {
	br := bufio.NewReaderSize(part, 4096)
	head, _ := br.Peek(archive.SniffLen)
	kind := archive.KindFromName(part.FileName())
	if sniffed := archive.Sniff(head); sniffed != "" {
		kind = sniffed
	}
	if kind == "" {
		return errf(http.StatusUnsupportedMediaType, "unsupported_archive", "the archive must be a .zip, .tar.gz or .tar")
	}
	var src io.Reader = br
	if b.sub.fp != nil {
		src = io.TeeReader(br, b.sub.fp.file("archive:"+part.FileName(), kind))
		defer b.sub.fp.end()
	}
	if !b.sub.dry {
		lim := archive.Limits{MaxArchiveBytes: b.s.cfg.MaxBatchBytes, MaxEntries: b.s.cfg.MaxBatchFiles, MaxEntryBytes: b.s.cfg.MaxInputBytes}
		err := archive.Walk(b.ctx, src, kind, lim, func(name string, _ int64, r io.Reader) error {
			return b.add(name, "", r, nil)
		})
		if err != nil {
			return b.bodyError(err)
		}
	}
	// Whatever follows the archive's end (tar padding), or the whole
	// archive of a replay, is read, so that the fingerprint covers the part.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return b.bodyError(err)
	}
	return nil
}

// bodyError maps what went wrong reading a batch to the API's answer: a
// refused archive to its code (its limits 413, unsafe or broken archives
// 422), the body past its limit to 413 batch_too_large, an input too large
// to 413, a broken body to 400.
func (b *batchUpload) bodyError(err error) error {
	var arc *archive.Error
	if errors.As(err, &arc) {
		status := http.StatusUnprocessableEntity
		switch arc.Code {
		case archive.CodeTooLarge, archive.CodeBomb, archive.CodeTooManyEntries:
			status = http.StatusRequestEntityTooLarge
		}
		return errf(status, arc.Code, arc.Error())
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errf(http.StatusRequestEntityTooLarge, "batch_too_large", fmt.Sprintf("a batch request is limited to %d bytes", b.s.cfg.MaxBatchBytes))
	}
	return inputError(err)
}

// add reads one input of the batch. fp, when set, fingerprints it.
func (b *batchUpload) add(name, declared string, r io.Reader, fp *fingerprint) error {
	if len(b.files) >= b.s.cfg.MaxBatchFiles {
		return errf(http.StatusRequestEntityTooLarge, "too_many_files", fmt.Sprintf("a batch holds at most %d files", b.s.cfg.MaxBatchFiles))
	}
	if fp != nil {
		r = io.TeeReader(r, fp.file(name, declared))
		defer fp.end()
	}
	// In the batch's shard: a job's transitions count in its batch's hash.
	f := batchFile{id: jobs.NewIDIn(jobs.ShardOf(b.id))}
	key := "inputs/" + b.tenant + "/" + b.id + "/" + f.id
	if b.sub.dry {
		key = "" // a replay only reads
	}
	inp, err := b.g.Add(r, key, declared, name, func(ct string) error {
		// With the model known, a file it cannot take is refused before
		// it is stored.
		if m := b.s.model(b.sub.model); m != nil && !accepts(m.ContentTypes, ct) {
			return unsupported(b.sub.model, ct, m.ContentTypes)
		}
		return nil
	})
	if err != nil {
		var ie *intake.Error
		if errors.As(err, &ie) && ie.Code == intake.CodeTooLarge {
			return errf(http.StatusRequestEntityTooLarge, ie.Code, fmt.Sprintf("file %q is over the limit of %d bytes an input", name, b.s.cfg.MaxInputBytes))
		}
		return b.bodyError(err)
	}
	f.inp = inp
	b.files = append(b.files, f)
	return nil
}

// acceptBatch checks the whole batch, then makes it durable.
func (s *Server) acceptBatch(ctx context.Context, t *tenants.Tenant, b *batchUpload) (*batchAccepted, error) {
	sub := b.sub
	if sub.model == "" {
		return nil, errf(http.StatusBadRequest, "missing_model", "the model field is required")
	}
	m := s.model(sub.model)
	if m == nil {
		return nil, errUnknownModel(sub.model)
	}
	acc := &batchAccepted{ID: b.id, Status: "in_progress", Model: sub.model, Tier: t.Tier, Refused: []refusal{},
		StatusURL: "/v1/batches/" + b.id, ResultsURL: "/v1/batches/" + b.id + "/results"}
	var ok []batchFile
	for _, f := range b.files {
		if f.inp.Refused == nil && !accepts(m.ContentTypes, f.inp.ContentType) {
			// The model came after this file: refused only now.
			f.inp.Refused = unsupported(sub.model, f.inp.ContentType, m.ContentTypes)
			b.g.Drop(f.inp)
		}
		if f.inp.Refused != nil {
			acc.Refused = append(acc.Refused, refusalOf(f.inp))
			continue
		}
		ok = append(ok, f)
	}
	if len(ok) == 0 {
		r := acc.Refused[0]
		status := http.StatusUnsupportedMediaType
		if r.Code == intake.CodeEmpty {
			status = http.StatusUnprocessableEntity
		}
		return nil, errf(status, r.Code, fmt.Sprintf("no file of the batch can be a job (%d refused; first: %s: %s)", len(acc.Refused), r.FileName, r.Message))
	}
	created := time.Now().UTC()
	deadline, err := s.deadline(t, created, sub)
	if err != nil {
		return nil, err
	}
	if err := s.checkWebhook(ctx, t, sub.webhookURL); err != nil {
		return nil, err
	}
	if err := s.checkQueue(ctx, t, int64(len(ok))); err != nil {
		return nil, err
	}
	js := make([]*jobs.Job, len(ok))
	for i, f := range ok {
		js[i] = &jobs.Job{ID: f.id, Tenant: t.Name, Tier: t.Tier, Model: sub.model, CreatedAt: created, Deadline: deadline,
			BatchID: b.id, FileName: f.inp.Name, InputKey: f.inp.Key, Input: f.inp.Data,
			ContentType: f.inp.ContentType, InputSize: f.inp.Size}
		if sub.jobWebhooks {
			js[i].WebhookURL = sub.webhookURL
		}
	}
	if err := s.cfg.Intake.Commit(ctx, b.g, batchRecord(t, b.id, sub, created), js); err != nil {
		return nil, notDurable(err)
	}
	// The console lists a tenant's batches from this index; a batch
	// missing from it is still whole, so a failure is only logged. Its
	// entries outlive a batch (kept until retention and grace after it
	// completes) by a second such span.
	keep := 2 * (s.cfg.Store.Retention() + jobs.ExpiredGrace)
	if err := notify.IndexBatch(context.WithoutCancel(ctx), s.cfg.Store.Redis(), t.Name, b.id, created, keep); err != nil {
		s.log.Warn("batch not indexed for the console", "batch", b.id, "tenant", t.Name, "err", err)
	}
	if s.cfg.Notifier != nil {
		// Every job may have ended before the count was set.
		if err := s.cfg.Notifier.CheckBatch(context.WithoutCancel(ctx), b.id); err != nil {
			s.log.Error("batch completion check", "batch", b.id, "err", err)
		}
	}
	acc.Jobs, acc.CreatedAt = len(js), created.Format(jobs.TimeFormat)
	return acc, nil
}

// batchRecord is the batch's hash, as package notify reads it.
func batchRecord(t *tenants.Tenant, id string, sub *submission, created time.Time) *intake.Batch {
	fields := map[string]any{
		notify.FieldTenant: t.Name, notify.FieldModel: sub.model, notify.FieldTier: t.Tier,
		notify.FieldCreatedAt: notify.MS(created),
	}
	if sub.webhookURL != "" {
		fields[notify.FieldWebhookURL] = sub.webhookURL
	}
	if sub.jobWebhooks {
		fields[notify.FieldJobWebhooks] = "1"
	}
	if len(sub.metadata) > 0 {
		fields[notify.FieldMetadata] = string(sub.metadata)
	}
	return &intake.Batch{ID: id, Fields: fields}
}

func unsupported(model, ct string, takes []string) *apiError {
	return errf(http.StatusUnsupportedMediaType, "unsupported_content_type", fmt.Sprintf("model %s takes %v, not %s", model, takes, ct))
}

// refusalOf says why a batch's file became no job.
func refusalOf(inp *intake.Input) refusal {
	var ae *apiError
	var ie *intake.Error
	switch {
	case errors.As(inp.Refused, &ae):
		return refusal{FileName: inp.Name, Code: ae.Code, Message: ae.Message}
	case errors.As(inp.Refused, &ie):
		return refusal{FileName: inp.Name, Code: ie.Code, Message: ie.Message}
	}
	return refusal{FileName: inp.Name, Code: "invalid_input", Message: inp.Refused.Error()}
}
