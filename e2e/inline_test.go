package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/jobs"
)

// inlineLimit is the INFERQ_INLINE_INPUT_BYTES of these tests: small, so
// that inputs on both sides of it are cheap.
const inlineLimit = 1024

func inlineEnv() []string {
	return []string{fmt.Sprintf("INFERQ_INLINE_INPUT_BYTES=%d", inlineLimit)}
}

// sized is n bytes that differ from job to job.
func sized(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// inputKey is where a job's record says its input lies ("" when inline).
func inputKey(t *testing.T, f *fleet, id string) string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: f.back.Redis.Addr})
	defer rdb.Close()
	k, err := rdb.HGet(context.Background(), jobs.RecordKey(id), "input_key").Result()
	if errors.Is(err, redis.Nil) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestInlineAndS3SideBySide: inputs exactly at the inline limit and one
// byte over it go through the whole path side by side, as single jobs
// (both submit forms) and in one batch: the ones at the limit never touch
// S3, the ones over it are stored there, and every result is right.
func TestInlineAndS3SideBySide(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: inlineEnv()})
	c := f.client("acme")
	ctx := ctxT(t, 2*time.Minute)
	type sub struct {
		id     string
		input  []byte
		inline bool
	}
	var subs []sub
	for i, n := range []int{inlineLimit, inlineLimit + 1} {
		in := sized(n, byte(i))
		j, err := c.Submit(ctx, client.Submit{Model: "echo", Input: bytes.NewReader(in), FileName: "x.bin", ContentType: "application/octet-stream"})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub{j.ID, in, n <= inlineLimit})
		in = sized(n, byte(i+10))
		j, err = c.SubmitBytes(ctx, "echo", in, "application/octet-stream")
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub{j.ID, in, n <= inlineLimit})
	}
	atLimit, overLimit := sized(inlineLimit, 20), sized(inlineLimit+1, 21)
	b, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", Files: []client.File{
		{Name: "at.bin", ContentType: "application/octet-stream", Reader: bytes.NewReader(atLimit)},
		{Name: "over.bin", ContentType: "application/octet-stream", Reader: bytes.NewReader(overLimit)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitBatch(ctx, b.ID, 50*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	res, err := c.BatchResults(ctx, b.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	for res.Next() {
		j := res.Job()
		switch j.FileName {
		case "at.bin":
			subs = append(subs, sub{j.ID, atLimit, true})
		case "over.bin":
			subs = append(subs, sub{j.ID, overLimit, false})
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	res.Close()
	if len(subs) != 6 {
		t.Fatalf("%d jobs, want 6", len(subs))
	}
	stored := strings.Join(s3Objects(t, f), "\n")
	for _, s := range subs {
		done, err := c.Wait(ctx, s.id)
		if err != nil {
			t.Fatal(err)
		}
		checkEcho(t, done, s.input)
		key := inputKey(t, f, s.id)
		switch {
		case s.inline && key != "":
			t.Errorf("job %s (%d bytes, at the limit) has its input in S3 at %s; want it inline", s.id, len(s.input), key)
		case s.inline && strings.Contains(stored, s.id):
			t.Errorf("job %s (%d bytes, at the limit) left an object in S3", s.id, len(s.input))
		case !s.inline && (key == "" || !strings.Contains(stored, key)):
			t.Errorf("job %s (%d bytes, over the limit) has no input in S3 (record key %q)", s.id, len(s.input), key)
		}
	}
}

// TestWorkerKilledHoldingInline: a worker SIGKILLed while it holds jobs
// whose inputs ride in their messages: every job ends once, with the
// right result, run by the next worker from the redelivered message.
func TestWorkerKilledHoldingInline(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: append(inlineEnv(), "INFERQ_ACK_WAIT=2s")})
	e := watchEndings(t, f)
	c := f.client("globex")
	ctx := ctxT(t, 3*time.Minute)
	inputs := map[string][]byte{}
	var ids []string
	for i := range 6 {
		in := sized(100+i, byte(i))
		j, err := c.Submit(ctx, client.Submit{Model: "slow", Input: bytes.NewReader(in), ContentType: "application/octet-stream"})
		if err != nil {
			t.Fatal(err)
		}
		inputs[j.ID] = in
		ids = append(ids, j.ID)
		if k := inputKey(t, f, j.ID); k != "" {
			t.Fatalf("job %s: input stored at %s, want inline", j.ID, k)
		}
	}
	waitRunning(t, c, ids)
	f.Workers[0].Signal(syscall.SIGKILL)
	f.Workers[0].Wait(10 * time.Second)
	if _, err := f.StartWorker(); err != nil {
		t.Fatal(err)
	}
	e.exactlyOnce(t, c, ids, "succeeded")
	retried := 0
	for _, id := range ids {
		j, err := c.Get(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkEcho(t, j, inputs[id])
		if j.Attempts > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatal("no job was running when the worker died: the test proved nothing")
	}
}

// TestBatchIngestNATSDown: NATS goes down while a batch of small files
// (and a few over the inline limit) is being taken in: the batch gets
// 503, and nothing of it is left: no job record, no batch, no S3 object,
// the tenant's unfinished count as before, and once NATS is back nothing
// of it runs.
func TestBatchIngestNATSDown(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: append(inlineEnv(), "INFERQ_PUBLISH_WAIT=2s")})
	c := f.client("initech")
	ctx := ctxT(t, 3*time.Minute)
	e := watchEndings(t, f)
	before := s3Objects(t, f)

	// The body is sent up to its last boundary; NATS stops; then the body
	// ends, and the producer, having read every file, must make the batch
	// durable without NATS.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL+"/v1/batches", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.Tenants["initech"].Key)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	type answer struct {
		resp *http.Response
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		answered <- answer{resp, err}
	}()
	_ = mw.WriteField("model", "echo")
	const files = 3000
	for i := range files {
		n := 200
		if i%500 == 0 {
			n = inlineLimit + 100 // stored in S3
		}
		w, _ := mw.CreateFormFile("file", fmt.Sprintf("f%05d.bin", i))
		_, _ = w.Write(sized(n, byte(i)))
	}
	f.back.NATS.Stop(5 * time.Second)
	_ = mw.Close()
	_ = pw.Close()
	a := <-answered
	if a.err != nil {
		t.Fatal(a.err)
	}
	body, _ := io.ReadAll(a.resp.Body)
	a.resp.Body.Close()
	if a.resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"unavailable"`) {
		t.Fatalf("batch while NATS went down: %d %s, want 503 unavailable", a.resp.StatusCode, body)
	}

	rdb := redis.NewClient(&redis.Options{Addr: f.back.Redis.Addr})
	defer rdb.Close()
	var jobKeys, batchKeys []string
	for it := rdb.Scan(ctx, 0, "job:*", 1000).Iterator(); it.Next(ctx); {
		jobKeys = append(jobKeys, it.Val())
	}
	for it := rdb.Scan(ctx, 0, "batch:*", 1000).Iterator(); it.Next(ctx); {
		batchKeys = append(batchKeys, it.Val())
	}
	if len(jobKeys) > 0 || len(batchKeys) > 0 {
		t.Fatalf("a refused batch left %d job records and batch keys %v", len(jobKeys), batchKeys)
	}
	if n, err := jobs.NewStore(rdb, time.Hour).Unfinished(ctx, "initech"); err != nil || n != 0 {
		t.Fatalf("unfinished count after a refused batch: %d (%v), want 0", n, err)
	}
	if after := s3Objects(t, f); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("a refused batch left objects in S3: %v", after)
	}

	j := natsBack(t, f, c)
	// Whatever of the refused batch reached the queue before NATS went
	// down is dropped, not run: the one job that ends is the new one.
	time.Sleep(2 * time.Second)
	e.mu.Lock()
	defer e.mu.Unlock()
	for id := range e.n {
		if id != j.ID {
			t.Errorf("job %s of the refused batch ran", id)
		}
	}
}

// TestRefusedUploadIsAnswered: a submit refused part-way through its body
// (a field or a file over its limit) gets its 4xx, every time, from a
// client that sends its whole request before it reads the answer (as
// Python's requests and many others do); never a reset connection.
func TestRefusedUploadIsAnswered(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_MAX_INPUT_BYTES=4194304"}})
	key := f.Tenants["acme"].Key
	addr := strings.TrimPrefix(f.URL, "http://")
	post := func(fields map[string][]byte, file []byte) (int, string, error) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("model", "echo")
		for k, v := range fields {
			w, _ := mw.CreateFormField(k)
			_, _ = w.Write(v)
		}
		w, _ := mw.CreateFormFile("file", "in.bin")
		_, _ = w.Write(file)
		_ = mw.Close()
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return 0, "", err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
		head := fmt.Sprintf("POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			addr, key, mw.FormDataContentType(), buf.Len())
		if _, err := conn.Write(append([]byte(head), buf.Bytes()...)); err != nil {
			return 0, "", fmt.Errorf("send: %w", err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, "", fmt.Errorf("read the answer: %w", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	for _, c := range []struct {
		name   string
		fields map[string][]byte
		file   []byte
		status int
		code   string
	}{
		{"1 MiB metadata", map[string][]byte{"metadata": bytes.Repeat([]byte("x"), 1<<20)}, []byte("in"), 400, "field_too_large"},
		{"4 MiB metadata", map[string][]byte{"metadata": bytes.Repeat([]byte("x"), 4<<20)}, []byte("in"), 400, "field_too_large"},
		{"input one MiB over", nil, make([]byte, 5<<20), 413, "input_too_large"},
	} {
		for i := range 6 {
			status, body, err := post(c.fields, c.file)
			if err != nil {
				t.Fatalf("%s, try %d: %v (want %d %s)", c.name, i+1, err, c.status, c.code)
			}
			if status != c.status || !strings.Contains(body, `"`+c.code+`"`) {
				t.Fatalf("%s, try %d: %d %s, want %d %s", c.name, i+1, status, body, c.status, c.code)
			}
		}
	}
}
