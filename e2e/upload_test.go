package e2e

import (
	"bytes"
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
)

// TestUploadImmutableAfterAccept: once a job on a presigned upload is
// accepted, writing the upload again changes nothing: S3 refuses a PUT of
// another length at the URL itself, and a rewrite of the upload's object
// (same length, or by anyone with bucket access) does not reach the job,
// which runs on what was checked. An input found over the limit in storage
// fails its own job only (input_too_large), not the batch around it.
func TestUploadImmutableAfterAccept(t *testing.T) {
	const limit = 64 << 10
	f := startFleet(t, fleettest.Options{Env: append(inlineEnv(), "INFERQ_MAX_INPUT_BYTES=65536")})
	c := f.client("acme")
	ctx := ctxT(t, 2*time.Minute)
	mc, err := minio.New(f.back.MinIO.Addr, &minio.Options{Creds: credentials.NewStaticV4(fleettest.MinIOUser, fleettest.MinIOPassword, "")})
	if err != nil {
		t.Fatal(err)
	}
	overwrite := func(key string, data []byte) {
		t.Helper()
		if _, err := mc.PutObject(ctx, f.back.Bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ContentType: "application/octet-stream"}); err != nil {
			t.Fatal(err)
		}
	}

	orig := sized(20000, 1)
	up, err := c.CreateUpload(ctx, "application/octet-stream", int64(len(orig)), "up.bin")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, up, bytes.NewReader(orig)); err != nil {
		t.Fatal(err)
	}
	// The worker is held while the inputs are tampered with, so that it
	// cannot have read them before.
	f.Workers[0].Signal(syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			f.Workers[0].Signal(syscall.SIGCONT)
		}
	}()
	uj, err := c.SubmitJSON(ctx, client.JSONSubmit{Model: "echo", UploadID: up.ID})
	if err != nil {
		t.Fatal(err)
	}
	// The URL takes no other length.
	longer := sized(limit+1000, 2)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, up.URL, bytes.NewReader(longer))
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			t.Fatalf("PUT of %d bytes to an upload declared as %d: %d, want it refused", len(longer), len(orig), resp.StatusCode)
		}
	}
	// Whatever is written to the upload's object now, the job has its own.
	same := sized(len(orig), 3)
	if err := c.Put(ctx, up, bytes.NewReader(same)); err != nil {
		t.Fatal(err)
	}
	overwrite("uploads/acme/"+up.ID, longer)

	// A job whose stored input grows past the limit, in one batch with a
	// healthy one.
	b, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", Files: []client.File{
		{Name: "grows.bin", ContentType: "application/octet-stream", Reader: bytes.NewReader(sized(inlineLimit+10, 4))},
		{Name: "fine.bin", ContentType: "application/octet-stream", Reader: bytes.NewReader(sized(inlineLimit+20, 5))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ids := batchIDs(t, c, b.ID)
	overwrite(inputKey(t, f, ids["grows.bin"]), longer)

	f.Workers[0].Signal(syscall.SIGCONT)
	stopped = false
	done, err := c.Wait(ctx, uj.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, done, orig)
	grows, err := c.Wait(ctx, ids["grows.bin"])
	if err != nil {
		t.Fatal(err)
	}
	if grows.Status != "failed" || grows.Error == nil || grows.Error.Code != "input_too_large" {
		t.Fatalf("job whose input grew past the limit: %s %+v, want failed input_too_large", grows.Status, grows.Error)
	}
	fine, err := c.Wait(ctx, ids["fine.bin"])
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, fine, sized(inlineLimit+20, 5))
}

// batchIDs maps a batch's file names to their job ids.
func batchIDs(t *testing.T, c *client.Client, batch string) map[string]string {
	t.Helper()
	res, err := c.BatchResults(context.Background(), batch, "")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	out := map[string]string{}
	for res.Next() {
		out[res.Job().FileName] = res.Job().ID
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
