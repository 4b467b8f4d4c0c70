package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"sync"

	"github.com/minio/minio-go/v7"
)

// Codes of the inputs intake refuses; package api maps them to statuses.
const (
	CodeTooLarge = "input_too_large" // 413
	CodeEmpty    = "empty_input"     // 422
)

// Error is an input refused for what it is.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Input is one input, read.
type Input struct {
	// Name is the client's file name (display only).
	Name string
	// ContentType is the type the client declared, else the sniffed one.
	ContentType string
	Size        int64
	// Data holds an inline input; Key names a stored one; both are empty
	// for an input refused or only read (a replayed idempotent request).
	Data []byte
	Key  string
	// Refused says why the input can become no job; the rest of a batch
	// goes on without it.
	Refused error

	held   int64 // inline budget taken
	stored bool  // an object may exist at Key
}

// Inline reports whether the input travels in its queue message.
func (i *Input) Inline() bool { return i.Data != nil }

// Gather reads the inputs of one request. Small inputs it keeps (inline)
// or stores in the background while the request reads on; large ones it
// streams to S3 as they arrive. Close ends it: it gives back the inline
// budget and, unless the jobs were made durable, deletes what it stored.
type Gather struct {
	in  *Intake
	ctx context.Context
	all []*Input
	sem chan struct{}
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error // the first failed background store
}

// uploaders bounds the background stores of one request.
const uploaders = 8

// smallFile is the size up to which an input not kept inline is buffered
// and stored by a background uploader while the request reads on.
const smallFile = 1 << 20

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Gather starts reading the inputs of one request.
func (in *Intake) Gather(ctx context.Context) *Gather {
	return &Gather{in: in, ctx: ctx, sem: make(chan struct{}, uploaders)}
}

// Len is how many inputs were added.
func (g *Gather) Len() int { return len(g.all) }

// Add reads one input from r. declared is the content type the client
// named ("" or application/octet-stream: sniffed from the bytes and name).
// check, when set, sees the content type before anything is stored; an
// error from it refuses the input (Input.Refused), which is then read to
// its end and dropped. key is where the input goes if it is stored. An
// empty input is refused with CodeEmpty. An input over the size limit
// fails the request with CodeTooLarge; so do a broken body and a failed
// store (returned as they are).
func (g *Gather) Add(r io.Reader, key, declared, name string, check func(contentType string) error) (*Input, error) {
	if err := g.failed(); err != nil {
		return nil, err
	}
	in := g.in
	inp := &Input{Name: name, Key: key}
	g.all = append(g.all, inp)
	lr := &limitReader{r: r, left: in.cfg.MaxInputBytes}
	buf := bufs.Get().(*bytes.Buffer)
	buf.Reset()
	n, err := io.CopyN(buf, lr, max(smallFile, in.cfg.InlineMax)+1)
	if err != nil && !errors.Is(err, io.EOF) {
		bufs.Put(buf)
		return nil, g.readError(lr, err)
	}
	whole := err != nil // the input ended within the buffer
	inp.ContentType = SniffType(declared, buf.Bytes()[:min(buf.Len(), 512)], name)
	if check != nil {
		inp.Refused = check(inp.ContentType)
	}
	if inp.Refused == nil && whole && n == 0 {
		inp.Refused = &Error{Code: CodeEmpty, Message: "the input is empty"}
	}
	if inp.Refused != nil || key == "" {
		// Refused, or only read: read it to its end, store nothing.
		rest, err := io.Copy(io.Discard, lr)
		bufs.Put(buf)
		inp.Key, inp.Size = "", n+rest
		if err != nil {
			return nil, g.readError(lr, err)
		}
		return inp, nil
	}
	switch {
	case whole && n <= in.cfg.InlineMax && in.reserve(n):
		inp.Data, inp.held, inp.Key, inp.Size = bytes.Clone(buf.Bytes()), n, "", n
		bufs.Put(buf)
	case whole:
		inp.Size = n
		g.storeAsync(inp, buf)
	default:
		// A large input: the buffered head, then the rest, straight
		// through to S3.
		inp.stored = true
		inp.Size, err = in.cfg.Blob.Put(g.ctx, key, io.MultiReader(bytes.NewReader(buf.Bytes()), lr), -1, inp.ContentType)
		bufs.Put(buf)
		if err != nil {
			return nil, g.readError(lr, err)
		}
	}
	return inp, nil
}

// readError says why reading one input failed: over the input limit, or
// whatever the body or the store said.
func (g *Gather) readError(lr *limitReader, err error) error {
	if lr.over {
		return &Error{Code: CodeTooLarge, Message: fmt.Sprintf("inputs are limited to %d bytes", g.in.cfg.MaxInputBytes)}
	}
	return err
}

// storeAsync hands a buffered input to a background uploader.
func (g *Gather) storeAsync(inp *Input, buf *bytes.Buffer) {
	g.sem <- struct{}{}
	g.wg.Add(1)
	inp.stored = true
	go func() {
		defer func() { bufs.Put(buf); <-g.sem; g.wg.Done() }()
		if g.failed() != nil {
			return
		}
		if _, err := g.in.cfg.Blob.Put(g.ctx, inp.Key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), inp.ContentType); err != nil {
			g.mu.Lock()
			if g.err == nil {
				g.err = fmt.Errorf("store input %q: %w", inp.Name, err)
			}
			g.mu.Unlock()
		}
	}()
}

func (g *Gather) failed() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Wait waits for the background stores and returns the first failure.
func (g *Gather) Wait() error {
	g.wg.Wait()
	return g.failed()
}

// Drop deletes the stored object of an input that will become no job (a
// batch's refused file found refused only after it was stored).
func (g *Gather) Drop(inp *Input) {
	g.wg.Wait()
	if inp.stored {
		g.in.removeObjects(context.WithoutCancel(g.ctx), []string{inp.Key})
		inp.stored = false
	}
}

// Close ends the request's hold on its inputs: it gives back the inline
// budget (the bytes now live in the queue, or nowhere) and, unless durable,
// deletes every object it stored.
func (g *Gather) Close(durable bool) {
	g.wg.Wait()
	var keys []string
	for _, inp := range g.all {
		g.in.unreserve(inp.held)
		inp.held = 0
		if !durable && inp.stored {
			keys = append(keys, inp.Key)
			inp.stored = false
		}
	}
	g.in.removeObjects(context.WithoutCancel(g.ctx), keys)
}

func (in *Intake) removeObjects(ctx context.Context, keys []string) {
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
	for e := range in.cfg.Blob.Client().RemoveObjects(ctx, in.cfg.Blob.Bucket(), ch, minio.RemoveObjectsOptions{}) {
		in.log.Warn("remove a refused input", "key", e.ObjectName, "err", e.Err)
	}
}

// SniffType is an input's content type: the one the client named, else
// what its first bytes look like, refined by its file name's extension
// when the bytes say only "some bytes" or "some text" (JSON, .npy).
func SniffType(declared string, head []byte, name string) string {
	ct, params, _ := mime.ParseMediaType(declared)
	if ct != "" && ct != "application/octet-stream" {
		// "ocr=force" is the one parameter kept: it asks the ocr model to
		// read a document's every page through OCR, text layer or not.
		if params["ocr"] == "force" {
			return mime.FormatMediaType(ct, map[string]string{"ocr": "force"})
		}
		return ct
	}
	// The standard sniffer knows no TIFF, which documents arrive as.
	if bytes.HasPrefix(head, []byte("II*\x00")) || bytes.HasPrefix(head, []byte("MM\x00*")) {
		return "image/tiff"
	}
	ct, _, _ = mime.ParseMediaType(http.DetectContentType(head))
	if ct == "application/octet-stream" || ct == "text/plain" {
		if ext := path.Ext(name); ext != "" {
			if byExt, _, err := mime.ParseMediaType(mime.TypeByExtension(ext)); err == nil && byExt != "" {
				return byExt
			}
		}
	}
	return ct
}

// limitReader fails once more than left bytes were read.
type limitReader struct {
	r    io.Reader
	left int64
	over bool
}

var errOverLimit = errors.New("input over the size limit")

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		l.over = true
		return n, errOverLimit
	}
	return n, err
}

// Adopt takes a presigned upload (the object at src, checked by the caller
// to be etag, of size bytes) as the input stored at key: a server-side
// copy, made only if src is still that object. The upload's URL stays
// writable for its whole validity; the copy is written by nobody else, so
// what was checked is what runs. The caller removes src once the job is
// durable (RemoveUpload); Close deletes the copy if it is not.
func (g *Gather) Adopt(src, etag, key, name, contentType string, size int64) (*Input, error) {
	c, b := g.in.cfg.Blob.Client(), g.in.cfg.Blob.Bucket()
	_, err := c.CopyObject(g.ctx, minio.CopyDestOptions{Bucket: b, Object: key},
		minio.CopySrcOptions{Bucket: b, Object: src, MatchETag: etag})
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "PreconditionFailed" || code == "NoSuchKey" {
			return nil, ErrUploadChanged
		}
		return nil, fmt.Errorf("copy upload %s: %w", src, err)
	}
	inp := &Input{Name: name, ContentType: contentType, Size: size, Key: key, stored: true}
	g.all = append(g.all, inp)
	return inp, nil
}

// ErrUploadChanged is a presigned upload whose object changed (or went)
// between its check and its copy.
var ErrUploadChanged = errors.New("the upload changed while it was being accepted")

// RemoveUpload deletes an adopted upload's own object, best effort: the
// job runs on its copy.
func (in *Intake) RemoveUpload(ctx context.Context, src string) {
	if err := in.cfg.Blob.Delete(ctx, src); err != nil {
		in.log.Warn("remove an adopted upload", "key", src, "err", err)
	}
}
