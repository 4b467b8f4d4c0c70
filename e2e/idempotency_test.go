package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
)

func jobRecords(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), "job:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

func wantAPIError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || e.Status != status || e.Code != code {
		t.Fatalf("%s: got %v, want %d %s", what, err, status, code)
	}
}

// TestIdempotencyAndIsolation: an Idempotency-Key replays the first job
// or batch and refuses another body; presigned uploads feed a job once;
// and every endpoint hides one tenant's jobs, batches, uploads and
// results from another (404).
func TestIdempotencyAndIsolation(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	ctx := ctxT(t, 2*time.Minute)
	acme, globex := f.client("acme"), f.client("globex")
	rdb := redis.NewClient(&redis.Options{Addr: f.back.Redis.Addr})
	t.Cleanup(func() { rdb.Close() })

	// Jobs: the same key and body twice is one job.
	submit := func(c *client.Client, key, body string) (*client.Job, error) {
		return c.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader(body), FileName: "in.txt",
			Metadata: map[string]any{"n": 1}, IdempotencyKey: key})
	}
	n0 := jobRecords(t, rdb)
	j1, err := submit(acme, "order-42", "same body")
	if err != nil {
		t.Fatal(err)
	}
	j2, err := submit(acme, "order-42", "same body")
	if err != nil {
		t.Fatal(err)
	}
	if j1.ID != j2.ID || !j1.CreatedAt.Equal(*j2.CreatedAt) || j2.Status != "queued" {
		t.Fatalf("second submit with the key: %+v, first %+v", j2, j1)
	}
	if n := jobRecords(t, rdb) - n0; n != 1 {
		t.Fatalf("%d jobs made, want 1", n)
	}
	_, err = submit(acme, "order-42", "another body")
	wantAPIError(t, "same key, other body", err, 422, "idempotency_key_reused")
	// Keys are per tenant.
	g1, err := submit(globex, "order-42", "same body")
	if err != nil || g1.ID == j1.ID {
		t.Fatalf("globex with acme's key: %+v, %v", g1, err)
	}
	// The JSON form too.
	js1, err := acme.SubmitJSON(ctx, client.JSONSubmit{Model: "echo", Data: []byte("json body"), IdempotencyKey: "json-1"})
	if err != nil {
		t.Fatal(err)
	}
	js2, err := acme.SubmitJSON(ctx, client.JSONSubmit{Model: "echo", Data: []byte("json body"), IdempotencyKey: "json-1"})
	if err != nil || js2.ID != js1.ID {
		t.Fatalf("json replay: %+v, %v", js2, err)
	}
	// Batches.
	files := func() []client.File {
		return []client.File{{Name: "a.txt", Reader: strings.NewReader("a")}, {Name: "b.txt", Reader: strings.NewReader("b")}}
	}
	n0 = jobRecords(t, rdb)
	b1, err := acme.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", Files: files(), IdempotencyKey: "batch-1"})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := acme.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", Files: files(), IdempotencyKey: "batch-1"})
	if err != nil || b2.ID != b1.ID || b2.Jobs != 2 {
		t.Fatalf("batch replay: %+v, %v", b2, err)
	}
	if n := jobRecords(t, rdb) - n0; n != 2 {
		t.Fatalf("%d jobs made by two batch submits with one key, want 2", n)
	}
	_, err = acme.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", Files: files()[:1], IdempotencyKey: "batch-1"})
	wantAPIError(t, "batch key, other files", err, 422, "idempotency_key_reused")

	// Presigned upload: PUT straight to S3, then a job on it, once.
	data := bytes.Repeat([]byte("large input "), 5000)
	up, err := acme.CreateUpload(ctx, "application/octet-stream", int64(len(data)), "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	_, err = acme.SubmitJSON(ctx, client.JSONSubmit{Model: "echo", UploadID: up.ID})
	wantAPIError(t, "job on an upload not yet sent", err, 409, "upload_incomplete")
	// The URL is bound to the declared content type.
	bad, _ := http.NewRequestWithContext(ctx, "PUT", up.URL, bytes.NewReader(data))
	bad.Header.Set("Content-Type", "text/html")
	if resp, err := http.DefaultClient.Do(bad); err != nil || resp.StatusCode/100 == 2 {
		t.Fatalf("PUT with another content type: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if err := acme.Put(ctx, up, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	_, err = globex.SubmitJSON(ctx, client.JSONSubmit{Model: "echo", UploadID: up.ID})
	wantAPIError(t, "another tenant's upload", err, 404, "unknown_upload")
	uj, err := acme.SubmitJSON(ctx, client.JSONSubmit{Model: "echo", UploadID: up.ID})
	if err != nil {
		t.Fatal(err)
	}
	done, err := acme.Wait(ctx, uj.ID)
	if err != nil {
		t.Fatal(err)
	}
	var er echoResult
	sum := sha256.Sum256(data)
	if json.Unmarshal(done.Result, &er) != nil || done.Status != "succeeded" || er.Bytes != len(data) ||
		er.SHA256 != hex.EncodeToString(sum[:]) || done.FileName != "big.bin" {
		t.Fatalf("job on the upload: %+v, result %s", done, done.Result)
	}
	_, err = acme.SubmitJSON(ctx, client.JSONSubmit{Model: "echo", UploadID: up.ID})
	wantAPIError(t, "second job on one upload", err, 409, "upload_already_used")
	// An upload of another length than declared is refused by S3 itself
	// (the URL signs the length), and a job on it finds nothing there.
	short, err := acme.CreateUpload(ctx, "application/octet-stream", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	put, _ := http.NewRequestWithContext(ctx, "PUT", short.URL, strings.NewReader("only 12 byte"))
	put.Header.Set("Content-Type", "application/octet-stream")
	if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode/100 == 2 {
		t.Fatalf("short PUT: %v %v, want it refused", resp, err)
	} else {
		resp.Body.Close()
	}
	_, err = acme.SubmitJSON(ctx, client.JSONSubmit{Model: "echo", UploadID: short.ID})
	wantAPIError(t, "upload refused at S3", err, 409, "upload_incomplete")
	_, err = acme.CreateUpload(ctx, "image/png", 1<<40, "")
	wantAPIError(t, "upload over the input limit", err, 413, "input_too_large")

	// Isolation: acme's job, batch and results are not globex's.
	if _, err := acme.WaitBatch(ctx, b1.ID, 100*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	_, err = globex.Get(ctx, j1.ID, 0)
	wantAPIError(t, "get another's job", err, 404, "not_found")
	_, err = globex.Get(ctx, j1.ID, time.Second)
	wantAPIError(t, "wait for another's job", err, 404, "not_found")
	_, err = globex.Cancel(ctx, j1.ID)
	wantAPIError(t, "cancel another's job", err, 404, "not_found")
	_, err = globex.GetBatch(ctx, b1.ID)
	wantAPIError(t, "get another's batch", err, 404, "not_found")
	_, err = globex.BatchResults(ctx, b1.ID, "")
	wantAPIError(t, "another's batch results", err, 404, "not_found")
	_, err = globex.CancelBatch(ctx, b1.ID)
	wantAPIError(t, "cancel another's batch", err, 404, "not_found")
	gkey := f.Tenants["globex"].Key
	if st, code := apiCall(t, "GET", f.URL+"/v1/jobs/"+j1.ID+"/events", gkey, "", ""); st != 404 || code != "not_found" {
		t.Fatalf("another's job events: %d %s", st, code)
	}
	_, err = acme.GetBatch(ctx, "b_nosuchbatch")
	wantAPIError(t, "unknown batch", err, 404, "not_found")
	// The owner still sees them.
	res, err := acme.BatchResults(ctx, b1.ID, "succeeded")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for res.Next() {
		names = append(names, res.Job().FileName)
	}
	res.Close()
	if strings.Join(names, ",") != "a.txt,b.txt" || res.Err() != nil {
		t.Fatalf("owner's results: %v %v", names, res.Err())
	}
}
