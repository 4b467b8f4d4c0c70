// Package blob is inferq's object storage: inputs under
// inputs/<tenant>/<job>, large outputs under outputs/, in one S3 bucket
// (MinIO in tests and the demo). Uploads are streamed, never held whole.
package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Errors a caller branches on.
var (
	// ErrNotFound is an object that does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrTooLarge is an object over the size its reader allows.
	ErrTooLarge = errors.New("object over the size limit")
)

// Store is one bucket.
type Store struct {
	c      *minio.Client
	bucket string
	region string
}

// Config locates the bucket.
type Config struct {
	Endpoint  string // host:port, or http(s)://host:port
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string
}

// Open returns a store on cfg's bucket; it does not touch the network.
func Open(cfg Config) (*Store, error) {
	host, secure := cfg.Endpoint, false
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil {
			return nil, fmt.Errorf("s3 endpoint %q: %w", cfg.Endpoint, err)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	c, err := minio.New(host, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: secure,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", cfg.Endpoint, err)
	}
	return &Store{c: c, bucket: cfg.Bucket, region: cfg.Region}, nil
}

// Bucket names the store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// Client exposes the S3 client, for presigning.
func (s *Store) Client() *minio.Client { return s.c }

// EnsureBucket creates the bucket when it is missing.
func (s *Store) EnsureBucket(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.c.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
	if err != nil {
		// Another process may have made it meanwhile.
		if ok, err2 := s.c.BucketExists(ctx, s.bucket); err2 == nil && ok {
			return nil
		}
		return fmt.Errorf("make bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Ping checks that the bucket can be reached.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("bucket %s does not exist", s.bucket)
	}
	return nil
}

// partSize bounds the memory one streamed upload of unknown size holds.
const partSize = 5 << 20

// smallObject is the size under which an upload of unknown size is read
// into memory and sent as one PUT: a stream of unknown size costs a
// multipart upload (three requests and a part buffer) even for a few KB.
const smallObject = 1 << 20

var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallObject+1); return &b }}

// Put streams r to key. size may be -1 when unknown; the reader's error
// (for example a size limit) ends the upload and is returned wrapped.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (int64, error) {
	opts := minio.PutObjectOptions{ContentType: contentType, PartSize: partSize}
	if size < 0 {
		bp := smallBufs.Get().(*[]byte)
		defer smallBufs.Put(bp)
		n, err := io.ReadFull(r, *bp)
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			r, size = bytes.NewReader((*bp)[:n]), int64(n)
		case err != nil:
			return 0, fmt.Errorf("put %s: %w", key, err)
		default:
			r = io.MultiReader(bytes.NewReader((*bp)[:n]), r)
		}
	}
	info, err := s.c.PutObject(ctx, s.bucket, key, r, size, opts)
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	return info.Size, nil
}

// Get reads key whole, refusing objects over max bytes.
func (s *Store) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	obj, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, max+1))
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("get %s: %w (%d bytes)", key, ErrTooLarge, max)
	}
	return b, nil
}

// Head reads the first n bytes of key (fewer when it is shorter), in one
// ranged GET: enough to tell what a stored input is without reading it.
func (s *Store) Head(ctx context.Context, key string, n int64) ([]byte, error) {
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(0, n-1); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	obj, err := s.c.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, n))
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return b, nil
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchKey" {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// InputKey is where a job's input lies.
func InputKey(tenant, job string) string { return "inputs/" + tenant + "/" + job }

// OutputKey is where a job's large output lies.
func OutputKey(tenant, job, name string) string {
	return "outputs/" + tenant + "/" + job + "/" + name
}

// ResultKey is where a job's result lies when it is too large to keep in
// the job record.
func ResultKey(tenant, job string) string { return OutputKey(tenant, job, "result.json") }

// Open streams key; the caller closes it.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	obj, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, 0, fmt.Errorf("get %s: %w", key, ErrNotFound)
		}
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	return obj, st.Size, nil
}
