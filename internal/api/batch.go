package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/archive"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/queue"
	"github.com/inferq/inferq/internal/tenants"
)

// Batches (POST /v1/batches): many file parts, or one archive part, become
// one job each, all carrying the batch's id. The request is read in two
// phases. First every input is streamed to S3 under the batch's prefix
// (inputs/<tenant>/<batch>/<job>), small ones by a few uploaders in
// parallel, large ones straight through; a limit broken on the way (a file
// too large, an archive that escapes or explodes, too many files) refuses
// the whole request and deletes what was stored. Then the batch record,
// the job records and their queue messages are made durable together; a
// failure there undoes them all (503). So a 202 names exactly the jobs that
// exist, and a refusal leaves nothing behind.
//
// A file whose content type the model cannot take, or an empty one, does
// not refuse the batch: it becomes no job, and the 202 lists it under
// "refused" with its code. A batch with no acceptable file at all is
// refused (415 unsupported_content_type, or 422 empty_input).

const (
	// smallFile is the size up to which an input is buffered and stored
	// by a background uploader while the request reads on.
	smallFile = 1 << 20
	// uploaders bounds the stores in flight of one batch request.
	uploaders = 8
	// recordWorkers bounds the job records written at once.
	recordWorkers = 8
	// publishWindow is how many queue messages are in flight at once.
	publishWindow = 1000
	// resultsPage is how many jobs one results page reads from Redis.
	resultsPage = 500
)

// batchFile is one input of a batch on its way to becoming a job.
type batchFile struct {
	id, name, key, contentType string
	size                       int64
	stored                     bool
	refused                    *refusal
}

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

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// batchUpload gathers the inputs of one batch request.
type batchUpload struct {
	s      *Server
	ctx    context.Context
	tenant string
	id     string
	sub    *submission
	files  []*batchFile
	names  map[string]bool
	sem    chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error // the first failed background store
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
		names: map[string]bool{}, sem: make(chan struct{}, uploaders),
	}
	err = b.read(mr)
	if werr := b.wait(); err == nil {
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
		b.removeStored()
		return err
	}
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
				return errf(http.StatusNotFound, "unknown_model", fmt.Sprintf("no model %q (GET /v1/models lists them)", b.sub.model))
			}
		}
	}
	if len(b.files) == 0 {
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
// fingerprint.
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
	if b.sub.dry {
		_, err := io.Copy(io.Discard, src)
		b.files = append(b.files, &batchFile{}) // the batch is not empty
		if err != nil {
			return b.bodyError(err)
		}
		return nil
	}
	lim := archive.Limits{MaxArchiveBytes: b.s.cfg.MaxBatchBytes, MaxEntries: b.s.cfg.MaxBatchFiles, MaxEntryBytes: b.s.cfg.MaxInputBytes}
	err := archive.Walk(b.ctx, src, kind, lim, func(name string, _ int64, r io.Reader) error {
		return b.add(name, "", r, nil)
	})
	if err != nil {
		return b.bodyError(err)
	}
	// Whatever follows the archive's end (tar padding) is read, so that
	// the fingerprint covers the part.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return b.bodyError(err)
	}
	return nil
}

// bodyError maps what went wrong reading a batch to the API's answer: a
// refused archive to its code (its limits 413, unsafe or broken archives
// 422), the body past its limit to 413 batch_too_large, a broken body to
// 400.
func (b *batchUpload) bodyError(err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
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
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return bodyError(err)
}

// add reads one input: small ones into a buffer that a background
// uploader stores, large ones straight to S3. fp, when set, fingerprints
// the input.
func (b *batchUpload) add(name, declared string, r io.Reader, fp *fingerprint) error {
	if len(b.files) >= b.s.cfg.MaxBatchFiles {
		return errf(http.StatusRequestEntityTooLarge, "too_many_files", fmt.Sprintf("a batch holds at most %d files", b.s.cfg.MaxBatchFiles))
	}
	if err := b.failed(); err != nil {
		return err
	}
	f := &batchFile{id: jobs.NewID(), name: name}
	f.key = "inputs/" + b.tenant + "/" + b.id + "/" + f.id
	b.files = append(b.files, f)
	src := r
	if fp != nil {
		src = io.TeeReader(r, fp.file(name, declared))
	}
	lr := &limitReader{r: src, left: b.s.cfg.MaxInputBytes}
	buf := bufs.Get().(*bytes.Buffer)
	buf.Reset()
	n, err := io.CopyN(buf, lr, smallFile+1)
	if err != nil && !errors.Is(err, io.EOF) {
		bufs.Put(buf)
		return b.readError(name, lr, err)
	}
	err = nil
	head := buf.Bytes()[:min(buf.Len(), 512)]
	f.contentType = sniffType(declared, head, name)
	// With the model known, a file it cannot take is refused before it is
	// stored.
	if m := b.s.model(b.sub.model); m != nil && !accepts(m.ContentTypes, f.contentType) {
		f.refused = unsupported(name, b.sub.model, f.contentType, m.ContentTypes)
	}
	if n <= smallFile {
		if fp != nil {
			fp.end()
		}
		f.size = n
		if n == 0 {
			f.refused = &refusal{FileName: name, Code: "empty_input", Message: "the file is empty"}
		}
		if f.refused != nil || b.sub.dry {
			bufs.Put(buf)
			return nil
		}
		b.storeAsync(f, buf)
		return nil
	}
	// A large input: the buffered head, then the rest, straight through.
	rest := io.MultiReader(bytes.NewReader(buf.Bytes()), lr)
	if f.refused != nil || b.sub.dry {
		n, err = io.Copy(io.Discard, rest)
	} else {
		n, err = b.s.cfg.Blob.Put(b.ctx, f.key, rest, -1, f.contentType)
		f.stored = true
	}
	bufs.Put(buf)
	if fp != nil {
		fp.end()
	}
	if err != nil {
		return b.readError(name, lr, err)
	}
	f.size = n
	return nil
}

// readError says why reading one input failed: over the input limit, an
// archive refused as it unpacked, the body broken or over its limit.
func (b *batchUpload) readError(name string, lr *limitReader, err error) error {
	if lr.over {
		return errf(http.StatusRequestEntityTooLarge, "input_too_large", fmt.Sprintf("file %q is over the limit of %d bytes an input", name, b.s.cfg.MaxInputBytes))
	}
	var arc *archive.Error
	var mbe *http.MaxBytesError
	var ae *apiError
	switch {
	case errors.As(err, &arc), errors.As(err, &mbe), errors.As(err, &ae),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return b.bodyError(err)
	}
	// Anything else came from S3, a fault of ours (503), or from the
	// body's transport: either way the batch cannot be taken.
	return fmt.Errorf("store input %q: %w", name, err)
}

func unsupported(name, model, ct string, takes []string) *refusal {
	return &refusal{FileName: name, Code: "unsupported_content_type",
		Message: fmt.Sprintf("model %s takes %v, not %s", model, takes, ct)}
}

// storeAsync hands a buffered input to a background uploader.
func (b *batchUpload) storeAsync(f *batchFile, buf *bytes.Buffer) {
	b.sem <- struct{}{}
	b.wg.Add(1)
	f.stored = true
	go func() {
		defer func() { bufs.Put(buf); <-b.sem; b.wg.Done() }()
		if b.failed() != nil {
			return
		}
		if _, err := b.s.cfg.Blob.Put(b.ctx, f.key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), f.contentType); err != nil {
			b.mu.Lock()
			if b.err == nil {
				b.err = fmt.Errorf("store input %q: %w", f.name, err)
			}
			b.mu.Unlock()
		}
	}()
}

func (b *batchUpload) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// wait waits for the background uploaders and returns the first failure.
func (b *batchUpload) wait() error {
	b.wg.Wait()
	return b.failed()
}

// removeStored deletes every input the request stored.
func (b *batchUpload) removeStored() {
	b.wg.Wait()
	var keys []string
	for _, f := range b.files {
		if f.stored {
			keys = append(keys, f.key)
		}
	}
	b.s.removeObjects(context.WithoutCancel(b.ctx), keys)
}

func (s *Server) removeObjects(ctx context.Context, keys []string) {
	if len(keys) == 0 {
		return
	}
	ch := make(chan minio.ObjectInfo)
	go func() {
		defer close(ch)
		for _, k := range keys {
			ch <- minio.ObjectInfo{Key: k}
		}
	}()
	for e := range s.cfg.Blob.Client().RemoveObjects(ctx, s.cfg.Blob.Bucket(), ch, minio.RemoveObjectsOptions{}) {
		s.log.Warn("remove a refused batch's input", "key", e.ObjectName, "err", e.Err)
	}
}

// acceptBatch checks the whole batch, then makes it durable: the batch
// record, each job's record, the ordered job list, each job's queue
// message, and last the job count, which makes the batch visible.
func (s *Server) acceptBatch(ctx context.Context, t *tenants.Tenant, b *batchUpload) (*batchAccepted, error) {
	sub := b.sub
	if sub.model == "" {
		return nil, errf(http.StatusBadRequest, "missing_model", "the model field is required")
	}
	m := s.model(sub.model)
	if m == nil {
		return nil, errf(http.StatusNotFound, "unknown_model", fmt.Sprintf("no model %q (GET /v1/models lists them)", sub.model))
	}
	acc := &batchAccepted{ID: b.id, Status: "in_progress", Model: sub.model, Tier: t.Tier, Refused: []refusal{},
		StatusURL: "/v1/batches/" + b.id, ResultsURL: "/v1/batches/" + b.id + "/results"}
	var ok []*batchFile
	for _, f := range b.files {
		if f.refused == nil && !accepts(m.ContentTypes, f.contentType) {
			f.refused = unsupported(f.name, sub.model, f.contentType, m.ContentTypes)
		}
		if f.refused != nil {
			acc.Refused = append(acc.Refused, *f.refused)
			continue
		}
		ok = append(ok, f)
	}
	if len(ok) == 0 {
		r := acc.Refused[0]
		status := http.StatusUnsupportedMediaType
		if r.Code == "empty_input" {
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
	// The refused files were never stored, or are deleted now.
	var drop []string
	for _, f := range b.files {
		if f.refused != nil && f.stored {
			drop = append(drop, f.key)
			f.stored = false
		}
	}
	s.removeObjects(ctx, drop)

	js := make([]*jobs.Job, len(ok))
	for i, f := range ok {
		js[i] = &jobs.Job{ID: f.id, Tenant: t.Name, Tier: t.Tier, Model: sub.model, CreatedAt: created, Deadline: deadline,
			BatchID: b.id, FileName: f.name, InputKey: f.key, ContentType: f.contentType, InputSize: f.size}
		if sub.jobWebhooks {
			js[i].WebhookURL = sub.webhookURL
		}
	}
	if err := s.makeBatchDurable(ctx, t, b.id, sub, created, js); err != nil {
		return nil, err
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

// makeBatchDurable writes the batch and its jobs and publishes them; on
// any failure it undoes what it wrote and answers 503.
func (s *Server) makeBatchDurable(ctx context.Context, t *tenants.Tenant, id string, sub *submission, created time.Time, js []*jobs.Job) error {
	rdb := s.cfg.Store.Redis()
	meta := map[string]any{
		notify.FieldTenant: t.Name, notify.FieldModel: sub.model, notify.FieldTier: t.Tier,
		notify.FieldCreatedAt: notify.MS(created),
	}
	if sub.webhookURL != "" {
		meta[notify.FieldWebhookURL] = sub.webhookURL
	}
	if sub.jobWebhooks {
		meta[notify.FieldJobWebhooks] = "1"
	}
	if len(sub.metadata) > 0 {
		meta[notify.FieldMetadata] = string(sub.metadata)
	}
	made := make([]bool, len(js))
	undo := func(cause error) error {
		s.log.Warn("batch refused, undoing it", "batch", id, "tenant", t.Name, "jobs", len(js), "err", cause)
		uctx := context.WithoutCancel(ctx)
		_ = parallel(len(js), recordWorkers, func(i int) error {
			if made[i] {
				_ = s.cfg.Store.Discard(uctx, js[i])
			}
			return nil
		})
		_ = rdb.Del(uctx, jobs.BatchKey(id), notify.JobsKey(id)).Err()
		return errUnavailable
	}
	if err := rdb.HSet(ctx, jobs.BatchKey(id), meta).Err(); err != nil {
		return undo(err)
	}
	err := parallel(len(js), recordWorkers, func(i int) error {
		if err := s.cfg.Store.Create(ctx, js[i]); err != nil {
			return err
		}
		made[i] = true
		return nil
	})
	if err != nil {
		return undo(err)
	}
	for start := 0; start < len(js); start += 10_000 {
		ids := make([]any, 0, 10_000)
		for _, j := range js[start:min(start+10_000, len(js))] {
			ids = append(ids, j.ID)
		}
		if err := rdb.RPush(ctx, notify.JobsKey(id), ids...).Err(); err != nil {
			return undo(err)
		}
	}
	if err := s.publishAll(ctx, js); err != nil {
		return undo(err)
	}
	if err := rdb.HSet(ctx, jobs.BatchKey(id), notify.FieldJobs, len(js)).Err(); err != nil {
		return undo(err)
	}
	return nil
}

// publishAll stores every job's message in JetStream, a window at a time,
// and returns once each is acknowledged (or the first failure).
func (s *Server) publishAll(ctx context.Context, js []*jobs.Job) error {
	for start := 0; start < len(js); start += publishWindow {
		window := js[start:min(start+publishWindow, len(js))]
		futs := make([]jetstream.PubAckFuture, 0, len(window))
		for _, j := range window {
			f, err := s.cfg.JS.PublishMsgAsync(&nats.Msg{
				Subject: queue.SubmitSubject(j.Tier),
				Data:    jobs.MessageFor(j).Encode(),
				Header:  nats.Header{jetstream.MsgIDHeader: []string{j.ID}},
			})
			if err != nil {
				return fmt.Errorf("publish %s: %w", j.ID, err)
			}
			futs = append(futs, f)
		}
		timeout := time.NewTimer(s.cfg.PublishWait)
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				timeout.Stop()
				return fmt.Errorf("publish %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
			case <-timeout.C:
				return errors.New("publish: no acknowledgement in time")
			case <-ctx.Done():
				timeout.Stop()
				return ctx.Err()
			}
		}
		timeout.Stop()
	}
	return nil
}

// parallel runs f(0..n-1) on up to workers goroutines and returns the
// first error; after one, the rest are skipped.
func parallel(n, workers int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || next >= n {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

var errBatchNotFound = errf(http.StatusNotFound, "not_found", "no such batch")

// loadBatch reads a batch and hides it from any tenant but its own.
func (s *Server) loadBatch(ctx context.Context, id string, t *tenants.Tenant) (*notify.Batch, error) {
	if !validID(id) {
		return nil, errBatchNotFound
	}
	b, err := notify.LoadBatch(ctx, s.cfg.Store.Redis(), id)
	if errors.Is(err, notify.ErrBatchNotFound) || (err == nil && b.Tenant != t.Name) {
		return nil, errBatchNotFound
	}
	return b, err
}

func (s *Server) getBatch(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	b, err := s.loadBatch(r.Context(), r.PathValue("id"), t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// cancelBatch cancels every job of the batch that has not ended (each
// as POST /v1/jobs/<id>/cancel would, webhooks included) and answers the
// batch; 409 when every job had already ended.
func (s *Server) cancelBatch(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	ctx := r.Context()
	b, err := s.loadBatch(ctx, r.PathValue("id"), t)
	if err != nil {
		return err
	}
	if b.Done {
		return errf(http.StatusConflict, "already_finished", "every job of the batch has already ended")
	}
	rdb := s.cfg.Store.Redis()
	now := time.Now()
	for start := int64(0); ; start += resultsPage {
		ids, err := rdb.LRange(ctx, notify.JobsKey(b.ID), start, start+resultsPage-1).Result()
		if err != nil {
			return err
		}
		err = parallel(len(ids), recordWorkers, func(i int) error {
			_, err := s.cfg.Store.Transition(ctx, ids[i], t.Name, jobs.Canceled, jobs.Update{FinishedAt: now})
			var te *jobs.TransitionError
			switch {
			case errors.As(err, &te), errors.Is(err, jobs.ErrNotFound):
				return nil // ended meanwhile, or expired
			case err != nil:
				return err
			}
			queue.PublishEvent(s.cfg.NATS, t.Name, ids[i], jobs.Canceled, now)
			if s.cfg.Notifier != nil {
				if err := s.cfg.Notifier.Finished(context.WithoutCancel(ctx), ids[i], jobs.Canceled); err != nil {
					s.log.Error("cancel: webhook or batch not recorded", "job", ids[i], "batch", b.ID, "err", err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(ids) < resultsPage {
			break
		}
	}
	if b, err = s.loadBatch(ctx, b.ID, t); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// batchResults streams the batch's jobs as NDJSON, in submit order, a page
// at a time, so that a batch of any size is never held in memory. A job
// whose record has expired is shown as {"id", "status": "expired"}.
// ?status= keeps only jobs in that state.
func (s *Server) batchResults(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	ctx := r.Context()
	b, err := s.loadBatch(ctx, r.PathValue("id"), t)
	if err != nil {
		return err
	}
	only := jobs.State(r.URL.Query().Get("status"))
	rdb := s.cfg.Store.Redis()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Batch-Jobs", strconv.FormatInt(b.Jobs, 10))
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for start := int64(0); ; start += resultsPage {
		ids, err := rdb.LRange(ctx, notify.JobsKey(b.ID), start, start+resultsPage-1).Result()
		if err == nil && len(ids) == 0 {
			return nil
		}
		var recs []*jobs.Job
		if err == nil {
			recs, err = s.cfg.Store.GetMany(ctx, ids)
		}
		if err != nil {
			// The status line is gone; break the stream so that the
			// client sees it end early rather than take it for whole.
			s.log.Error("batch results broken off", "batch", b.ID, "tenant", t.Name, "at", start, "err", err)
			panic(http.ErrAbortHandler)
		}
		for i, j := range recs {
			if j == nil {
				j = &jobs.Job{ID: ids[i], Status: jobs.Expired, Model: b.Model, Tier: b.Tier, BatchID: b.ID}
			}
			if only != "" && j.Status != only {
				continue
			}
			if err := enc.Encode(j); err != nil {
				return nil // the client went away
			}
		}
		if fl != nil {
			fl.Flush()
		}
		if len(ids) < resultsPage {
			return nil
		}
	}
}
