package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/tenants"
)

// Presigned uploads (POST /v1/uploads): the client PUTs a large input
// straight to S3, then submits a job naming the upload_id. The upload
// belongs to the tenant that made it; its declared size and content type
// are checked against the stored object when a job names it (the URL also
// signs the content type and the length, so S3 refuses a PUT with
// another). The accepted job runs on a server-side copy of the object as
// checked (intake's Gather.Adopt), not on the upload itself, whose URL
// stays writable for an hour. An upload feeds one job: a second job naming
// it gets 409 upload_already_used.

// uploadRecordTTL is how long an upload id can be named by a job.
const uploadRecordTTL = 24 * time.Hour

func uploadKey(id string) string { return "upload:" + id }

// UploadObjectKey is where an upload's bytes lie in the bucket.
func UploadObjectKey(tenant, id string) string { return "uploads/" + tenant + "/" + id }

type uploadRequest struct {
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	FileName    string `json:"file_name"`
}

type uploadCreated struct {
	UploadID    string            `json:"upload_id"`
	URL         string            `json:"url"`
	Method      string            `json:"method"`
	Headers     map[string]string `json:"headers"`
	ExpiresAt   string            `json:"expires_at"`
	ContentType string            `json:"content_type"`
	Size        int64             `json:"size"`
}

func (s *Server) createUpload(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	ctx := r.Context()
	var req uploadRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxFieldBytes)).Decode(&req); err != nil {
		return errf(http.StatusBadRequest, "malformed_json", "the body is not valid JSON: "+err.Error())
	}
	ct := "application/octet-stream"
	if req.ContentType != "" {
		var err error
		if ct, _, err = mime.ParseMediaType(req.ContentType); err != nil {
			return errf(http.StatusBadRequest, "invalid_content_type", "content_type is not a media type")
		}
	}
	switch {
	case req.Size <= 0:
		return errf(http.StatusBadRequest, "invalid_size", "size must be the upload's length in bytes, at least 1")
	case req.Size > s.cfg.MaxInputBytes:
		return errf(http.StatusRequestEntityTooLarge, "input_too_large", fmt.Sprintf("inputs are limited to %d bytes", s.cfg.MaxInputBytes))
	}
	id := "u_" + jobs.NewID()
	key := UploadObjectKey(t.Name, id)
	expires := time.Now().Add(s.cfg.UploadExpiry)
	// Signing the length bounds what the URL takes at S3 itself: a PUT of
	// any other length fails its signature check.
	size := strconv.FormatInt(req.Size, 10)
	u, err := s.cfg.Blob.Client().PresignHeader(ctx, http.MethodPut, s.cfg.Blob.Bucket(), key, s.cfg.UploadExpiry, nil,
		http.Header{"Content-Type": []string{ct}, "Content-Length": []string{size}})
	if err != nil {
		return fmt.Errorf("presign upload: %w", err)
	}
	rdb := s.cfg.Store.Redis()
	pipe := rdb.TxPipeline()
	pipe.HSet(ctx, uploadKey(id), map[string]any{
		"tenant": t.Name, "key": key, "content_type": ct, "size": req.Size,
		"file_name": cleanFileName(req.FileName), "expires_at": expires.UnixMilli(),
	})
	pipe.Expire(ctx, uploadKey(id), uploadRecordTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record upload %s: %w", id, err)
	}
	writeJSON(w, http.StatusOK, uploadCreated{
		UploadID: id, URL: u.String(), Method: http.MethodPut, Headers: map[string]string{"Content-Type": ct, "Content-Length": size},
		ExpiresAt: expires.UTC().Format(jobs.TimeFormat), ContentType: ct, Size: req.Size,
	})
	return nil
}

var errUnknownUpload = errf(http.StatusNotFound, "unknown_upload", "no such upload (POST /v1/uploads makes one)")

// useUpload makes the named upload the job's input, once its object is
// there with the declared size and type.
func (s *Server) useUpload(ctx context.Context, j *jobs.Job, sub *submission) error {
	if !validID(sub.uploadID) {
		return errUnknownUpload
	}
	m, err := s.cfg.Store.Redis().HGetAll(ctx, uploadKey(sub.uploadID)).Result()
	if err != nil {
		return fmt.Errorf("read upload %s: %w", sub.uploadID, err)
	}
	if len(m) == 0 || m["tenant"] != j.Tenant {
		return errUnknownUpload
	}
	if m["job"] != "" {
		return errUploadUsed
	}
	size, _ := strconv.ParseInt(m["size"], 10, 64)
	info, err := s.cfg.Blob.Client().StatObject(ctx, s.cfg.Blob.Bucket(), m["key"], minio.StatObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return errf(http.StatusConflict, "upload_incomplete", "nothing has been uploaded to this upload's URL yet")
		}
		return fmt.Errorf("stat upload %s: %w", sub.uploadID, err)
	}
	gotCT, _, _ := mime.ParseMediaType(info.ContentType)
	if info.Size != size || gotCT != m["content_type"] {
		return errf(http.StatusUnprocessableEntity, "upload_mismatch",
			fmt.Sprintf("the upload holds %d bytes of %s; it was declared as %d bytes of %s", info.Size, gotCT, size, m["content_type"]))
	}
	j.FileName = m["file_name"]
	sub.upload = &upload{key: m["key"], etag: info.ETag}
	sub.contentType, sub.size = m["content_type"], info.Size
	return nil
}

// upload is the presigned upload a submit names, as checked.
type upload struct{ key, etag string }

var errUploadUsed = errf(http.StatusConflict, "upload_already_used", "this upload is already the input of another job")

// claimUpload marks the upload as the input of job, atomically, so that
// two submits naming it cannot both have it.
func (s *Server) claimUpload(ctx context.Context, id, job string) error {
	ok, err := s.cfg.Store.Redis().HSetNX(ctx, uploadKey(id), "job", job).Result()
	if err != nil {
		return fmt.Errorf("claim upload %s: %w", id, err)
	}
	if !ok {
		return errUploadUsed
	}
	return nil
}

// unclaimUpload frees an upload whose job was refused after the claim.
func (s *Server) unclaimUpload(ctx context.Context, id, job string) {
	if id == "" {
		return
	}
	err := unclaim.Run(context.WithoutCancel(ctx), s.cfg.Store.Redis(), []string{uploadKey(id)}, job).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		s.log.Warn("release upload", "upload", id, "job", job, "err", err)
	}
}

var unclaim = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'job') == ARGV[1] then return redis.call('HDEL', KEYS[1], 'job') end
return 0`)
