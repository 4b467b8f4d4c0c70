package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/inferq/inferq/internal/archive"
)

// File is one input of a batch. Give Reader, or Open to have it opened
// only when its turn comes (DirFiles does), so that a batch of many files
// never holds them all open.
type File struct {
	// Name becomes the job's file_name; folders are kept ("a/b.png").
	Name string
	// ContentType is sent with the file; empty: guessed from the name's
	// extension, else left to the server to sniff.
	ContentType string
	// Size is the file's length when known, for progress totals.
	Size   int64
	Reader io.Reader
	Open   func() (io.ReadCloser, error)
}

// DirFiles lists the regular files under dir, recursively, in name
// order, named by their path relative to dir with forward slashes. Hidden
// files and folders (".x") and files operating systems add on their own
// (.DS_Store, Thumbs.db, ...) are left out; symbolic links are not
// followed.
func DirFiles(dir string) ([]File, error) {
	var out []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if archive.IsOSMetadata(rel) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, File{Name: rel, Size: info.Size(), Open: func() (io.ReadCloser, error) { return os.Open(p) }})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// BatchSubmit is a batch to submit: Files (one job each) or one Archive
// (.zip, .tar.gz or .tar, unpacked by the server, one job per file).
type BatchSubmit struct {
	Model string
	Files []File
	// Archive, instead of Files; ArchiveName names it (its extension
	// tells the kind when the bytes do not).
	Archive     io.Reader
	ArchiveName string
	// DeadlineMS asks for a deadline later than the tier's, from now.
	DeadlineMS int64
	// WebhookURL receives batch.completed; with JobWebhooks, each job's
	// job.succeeded / job.failed / job.canceled too.
	WebhookURL  string
	JobWebhooks bool
	Metadata    map[string]any
	// IdempotencyKey makes a retried submit return the first batch.
	IdempotencyKey string
	// Progress, when set, is called as input bytes are sent, with the
	// total sent so far.
	Progress func(sent int64)
}

// Refusal is a file of a batch that became no job, and why.
type Refusal struct {
	FileName string `json:"file_name"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

// Counts are a batch's jobs by state.
type Counts struct {
	Queued    int64 `json:"queued"`
	Running   int64 `json:"running"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	Canceled  int64 `json:"canceled"`
	Expired   int64 `json:"expired"`
}

// Ended is how many of the batch's jobs have ended.
func (c Counts) Ended() int64 { return c.Succeeded + c.Failed + c.Canceled + c.Expired }

// Batch is a batch as the API shows it (the 202 of a submit, or GET).
type Batch struct {
	ID          string          `json:"id"`
	Status      string          `json:"status"`
	Model       string          `json:"model"`
	Tier        string          `json:"tier"`
	Jobs        int64           `json:"jobs"`
	Counts      Counts          `json:"counts"`
	Done        bool            `json:"done"`
	MetDeadline int64           `json:"met_deadline"`
	CreatedAt   *time.Time      `json:"created_at"`
	CompletedAt *time.Time      `json:"completed_at"`
	Metadata    json.RawMessage `json:"metadata"`
	WebhookURL  string          `json:"webhook_url"`
	StatusURL   string          `json:"status_url"`
	ResultsURL  string          `json:"results_url"`
	// Refused lists, in a submit's answer, the files that became no job.
	Refused []Refusal `json:"refused"`
}

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// SubmitBatch streams a batch as multipart/form-data: fields first, then
// each file (opened in turn) or the archive. Nothing is held in memory.
func (c *Client) SubmitBatch(ctx context.Context, b BatchSubmit) (*Batch, error) {
	if (len(b.Files) == 0) == (b.Archive == nil) {
		return nil, errors.New("inferq: a batch needs Files or an Archive")
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := writeBatch(mw, b)
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := c.request(ctx, "POST", "/v1/batches", pr)
	if err != nil {
		pr.Close()
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if b.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", b.IdempotencyKey)
	}
	var out Batch
	err = c.do(req, http.StatusAccepted, &out)
	pr.Close() // stops the writer if the server answered early
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func writeBatch(mw *multipart.Writer, b BatchSubmit) error {
	fields := [][2]string{{"model", b.Model}, {"webhook_url", b.WebhookURL}}
	if b.DeadlineMS > 0 {
		fields = append(fields, [2]string{"deadline_ms", strconv.FormatInt(b.DeadlineMS, 10)})
	}
	if b.JobWebhooks {
		fields = append(fields, [2]string{"job_webhooks", "true"})
	}
	if b.Metadata != nil {
		m, err := json.Marshal(b.Metadata)
		if err != nil {
			return err
		}
		fields = append(fields, [2]string{"metadata", string(m)})
	}
	for _, f := range fields {
		if f[1] != "" {
			if err := mw.WriteField(f[0], f[1]); err != nil {
				return err
			}
		}
	}
	var sent atomic.Int64
	copyPart := func(w io.Writer, r io.Reader) error {
		if b.Progress != nil {
			r = &progressReader{r: r, sent: &sent, fn: b.Progress}
		}
		_, err := io.Copy(w, r)
		return err
	}
	if b.Archive != nil {
		name := b.ArchiveName
		if name == "" {
			name = "batch.zip"
		}
		w, err := mw.CreatePart(partHeader("archive", name, "application/octet-stream"))
		if err != nil {
			return err
		}
		return copyPart(w, b.Archive)
	}
	for _, f := range b.Files {
		if err := writeFile(mw, f, copyPart); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return nil
}

func writeFile(mw *multipart.Writer, f File, copyPart func(io.Writer, io.Reader) error) error {
	r := f.Reader
	if r == nil {
		if f.Open == nil {
			return errors.New("no Reader and no Open")
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		r = rc
	}
	ct := f.ContentType
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(f.Name))
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	w, err := mw.CreatePart(partHeader("file", f.Name, ct))
	if err != nil {
		return err
	}
	return copyPart(w, r)
}

func partHeader(field, fileName, contentType string) textproto.MIMEHeader {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename="%s"`, field, quoteEscaper.Replace(fileName)))
	h.Set("Content-Type", contentType)
	return h
}

type progressReader struct {
	r    io.Reader
	sent *atomic.Int64
	fn   func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(p.sent.Add(int64(n)))
	}
	return n, err
}

// GetBatch reads a batch's counts.
func (c *Client) GetBatch(ctx context.Context, id string) (*Batch, error) {
	req, err := c.request(ctx, "GET", "/v1/batches/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, err
	}
	var b Batch
	return &b, c.do(req, http.StatusOK, &b)
}

// WaitBatch polls a batch every interval (1 s when 0) until every job has
// ended or ctx ends; progress, when set, sees each reading.
func (c *Client) WaitBatch(ctx context.Context, id string, interval time.Duration, progress func(*Batch)) (*Batch, error) {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		b, err := c.GetBatch(ctx, id)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			progress(b)
		}
		if b.Done {
			return b, nil
		}
		select {
		case <-ctx.Done():
			return b, ctx.Err()
		case <-t.C:
		}
	}
}

// Results streams a batch's jobs, in submit order (GET
// /v1/batches/<id>/results, NDJSON). Call Next until it returns false,
// then check Err; Close releases the connection early.
type Results struct {
	body io.ReadCloser
	sc   *bufio.Scanner
	line []byte
	job  *Job
	err  error
}

// BatchResults opens the results of a batch. status, when not empty,
// keeps only the jobs in that state.
func (c *Client) BatchResults(ctx context.Context, id, status string) (*Results, error) {
	p := "/v1/batches/" + url.PathEscape(id) + "/results"
	if status != "" {
		p += "?status=" + url.QueryEscape(status)
	}
	req, err := c.request(ctx, "GET", p, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, errorOf(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20) // one job's result may be large
	return &Results{body: resp.Body, sc: sc}, nil
}

// Next reads the next job; false at the end or on an error.
func (r *Results) Next() bool {
	if r.err != nil || r.sc == nil {
		return false
	}
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var j Job
		if err := json.Unmarshal(line, &j); err != nil {
			r.err = fmt.Errorf("inferq: results line: %w", err)
			return false
		}
		r.line, r.job = line, &j
		return true
	}
	r.err = r.sc.Err()
	if errors.Is(r.err, io.ErrUnexpectedEOF) {
		r.err = fmt.Errorf("inferq: results ended early: %w", r.err)
	}
	r.sc = nil
	return false
}

// Job is the job Next read.
func (r *Results) Job() *Job { return r.job }

// Raw is the line Next read, as the server sent it (valid until the next
// call to Next).
func (r *Results) Raw() []byte { return r.line }

// Err is why Next stopped, nil at a clean end.
func (r *Results) Err() error { return r.err }

// Close releases the connection.
func (r *Results) Close() error { return r.body.Close() }

// Upload is a presigned upload: PUT the input to URL with Headers, then
// submit a job naming ID (SubmitJSON with UploadID).
type Upload struct {
	ID          string            `json:"upload_id"`
	URL         string            `json:"url"`
	Method      string            `json:"method"`
	Headers     map[string]string `json:"headers"`
	ExpiresAt   *time.Time        `json:"expires_at"`
	ContentType string            `json:"content_type"`
	Size        int64             `json:"size"`
}

// CreateUpload asks for a presigned upload of size bytes of contentType.
func (c *Client) CreateUpload(ctx context.Context, contentType string, size int64, fileName string) (*Upload, error) {
	body, _ := json.Marshal(map[string]any{"content_type": contentType, "size": size, "file_name": fileName})
	req, err := c.request(ctx, "POST", "/v1/uploads", strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	var u Upload
	return &u, c.do(req, http.StatusOK, &u)
}

// Put sends the upload's bytes to its presigned URL (straight to S3, not
// through the fleet). r must hold exactly the declared size.
func (c *Client) Put(ctx context.Context, u *Upload, r io.Reader) error {
	method := u.Method
	if method == "" {
		method = http.MethodPut
	}
	req, err := http.NewRequestWithContext(ctx, method, u.URL, r)
	if err != nil {
		return err
	}
	req.ContentLength = u.Size
	for k, v := range u.Headers {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &Error{Status: resp.StatusCode, Code: "upload_failed", Message: strings.TrimSpace(string(b))}
	}
	return nil
}

// SubmitLarge uploads r (size bytes) by a presigned upload and submits a
// job on it.
func (c *Client) SubmitLarge(ctx context.Context, model string, r io.Reader, size int64, contentType, fileName string) (*Job, error) {
	u, err := c.CreateUpload(ctx, contentType, size, fileName)
	if err != nil {
		return nil, err
	}
	if err := c.Put(ctx, u, r); err != nil {
		return nil, err
	}
	return c.SubmitJSON(ctx, JSONSubmit{Model: model, UploadID: u.ID})
}

// CancelBatch cancels every job of a batch that has not ended.
func (c *Client) CancelBatch(ctx context.Context, id string) (*Batch, error) {
	req, err := c.request(ctx, "POST", "/v1/batches/"+url.PathEscape(id)+"/cancel", nil)
	if err != nil {
		return nil, err
	}
	var b Batch
	return &b, c.do(req, http.StatusOK, &b)
}
