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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
)

type echoResult struct {
	Bytes  int     `json:"bytes"`
	SHA256 string  `json:"sha256"`
	Sum    float64 `json:"sum"`
}

// echoSumBytes is how many leading bytes the echo model sums.
const echoSumBytes = 4096

func checkEcho(t *testing.T, j *client.Job, input []byte) {
	t.Helper()
	if j.Status != "succeeded" {
		t.Fatalf("job %s: status %s, error %+v", j.ID, j.Status, j.Error)
	}
	var r echoResult
	if err := json.Unmarshal(j.Result, &r); err != nil {
		t.Fatalf("result %s: %v", j.Result, err)
	}
	sum := sha256.Sum256(input)
	var want float64
	for _, b := range input[:min(len(input), echoSumBytes)] {
		want += float64(b)
	}
	if r.Bytes != len(input) || r.SHA256 != hex.EncodeToString(sum[:]) || r.Sum != want {
		t.Fatalf("result %+v, want %d bytes, sha256 %x, sum %v", r, len(input), sum, want)
	}
}

// TestEchoJob: a job submitted over HTTP, both forms, reaches succeeded
// with the right result and the fields of API.md.
func TestEchoJob(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	c := f.client("acme")
	ctx := ctxT(t, time.Minute)
	input := []byte("hello, inferq: the whole path of one job")
	j, err := c.Submit(ctx, client.Submit{Model: "echo", Input: bytes.NewReader(input), FileName: "hello.txt", ContentType: "text/plain",
		Metadata: map[string]any{"order": 42}})
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != "queued" || j.Tier != "premium" || j.StatusURL != "/v1/jobs/"+j.ID || j.Deadline == nil || j.EstimatedCompletion == nil {
		t.Fatalf("202 body: %+v", j)
	}
	if got := j.Deadline.Sub(*j.CreatedAt); got != 5*time.Second {
		t.Fatalf("premium deadline is %s after creation, want 5s", got)
	}
	done, err := c.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, done, input)
	if done.ModelVersion != "1" || done.Attempts != 1 || done.FileName != "hello.txt" || done.MetDeadline == nil ||
		done.StartedAt == nil || done.FinishedAt == nil || string(done.Metadata) != `{"order":42}` {
		t.Fatalf("finished job: %+v", done)
	}

	// The JSON form, for a standard-tier tenant, with a later deadline.
	data := bytes.Repeat([]byte{7, 250}, 3000) // longer than echo's max_len: bytes and sha256 still cover it all
	j2, err := f.client("globex").SubmitBytes(ctx, "echo", data, "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	done2, err := f.client("globex").Wait(ctx, j2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done2.Status != "succeeded" || done2.Tier != "standard" {
		t.Fatalf("json job: %+v", done2)
	}
	var r echoResult
	_ = json.Unmarshal(done2.Result, &r)
	sum := sha256.Sum256(data)
	if r.Bytes != len(data) || r.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("json job result %+v", r)
	}
}

// apiCall sends a raw request and returns the status and error code.
func apiCall(t *testing.T, method, url, key, contentType, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error.Code
}

// TestAPIErrors: the error cases of API.md, each with its status and code.
func TestAPIErrors(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_MAX_INPUT_BYTES=65536"}})
	ctx := ctxT(t, time.Minute)
	acme, globex := f.client("acme"), f.client("globex")
	wantErr := func(err error, status int, code string) {
		t.Helper()
		var e *client.Error
		if !errors.As(err, &e) || e.Status != status || e.Code != code {
			t.Fatalf("got %v, want %d %s", err, status, code)
		}
	}

	_, err := client.New(f.URL, "iq_not-a-key").Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("x")})
	wantErr(err, 401, "unauthorized")
	if st, code := apiCall(t, "GET", f.URL+"/v1/models", "", "", ""); st != 401 || code != "unauthorized" {
		t.Fatalf("no key: %d %s", st, code)
	}

	_, err = acme.Submit(ctx, client.Submit{Model: "nope", Input: strings.NewReader("x")})
	wantErr(err, 404, "unknown_model")

	_, err = acme.Submit(ctx, client.Submit{Model: "echo", Input: bytes.NewReader(make([]byte, 65537))})
	wantErr(err, 413, "input_too_large")
	_, err = acme.SubmitBytes(ctx, "echo", make([]byte, 70000), "application/octet-stream")
	wantErr(err, 413, "input_too_large")

	key := f.Tenants["acme"].Key
	for _, tc := range []struct {
		name, ct, body string
		status         int
		code           string
	}{
		{"malformed json", "application/json", `{"model": "echo", "input": `, 400, "malformed_json"},
		{"no input", "application/json", `{"model": "echo"}`, 400, "missing_input"},
		{"bad base64", "application/json", `{"model": "echo", "input": {"data": "***"}}`, 422, "undecodable_input"},
		{"unknown model json", "application/json", `{"model": "nope", "input": {"data": "aGk="}}`, 404, "unknown_model"},
		{"metadata not an object", "application/json", `{"model": "echo", "input": {"data": "aGk="}, "metadata": [1]}`, 400, "invalid_metadata"},
		{"webhook not http", "application/json", `{"model": "echo", "input": {"data": "aGk="}, "webhook_url": "file:///etc/passwd"}`, 400, "invalid_webhook_url"},
		{"other body type", "text/plain", `hello`, 415, "unsupported_request_type"},
		{"multipart without file", "multipart/form-data; boundary=XX", "--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\necho\r\n--XX--\r\n", 400, "missing_input"},
	} {
		if st, code := apiCall(t, "POST", f.URL+"/v1/jobs", key, tc.ct, tc.body); st != tc.status || code != tc.code {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, st, code, tc.status, tc.code)
		}
	}

	// A deadline earlier than the tier's is refused; a later one is kept.
	if st, code := apiCall(t, "POST", f.URL+"/v1/jobs", key, "application/json", `{"model": "echo", "input": {"data": "aGk="}, "deadline_ms": 1000}`); st != 400 || code != "deadline_too_early" {
		t.Fatalf("early deadline: %d %s", st, code)
	}
	late, err := acme.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("x"), DeadlineMS: 60000})
	if err != nil {
		t.Fatal(err)
	}
	if got := late.Deadline.Sub(*late.CreatedAt); got != time.Minute {
		t.Fatalf("asked deadline: %s after creation, want 1m", got)
	}

	// Another tenant's job is not found, for reads and cancels alike.
	j, err := acme.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("mine")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = globex.Get(ctx, j.ID, 0)
	wantErr(err, 404, "not_found")
	_, err = globex.Cancel(ctx, j.ID)
	wantErr(err, 404, "not_found")
	_, err = acme.Get(ctx, "no-such-job", 0)
	wantErr(err, 404, "not_found")

	// A finished job cannot be canceled.
	if _, err := acme.Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	_, err = acme.Cancel(ctx, j.ID)
	wantErr(err, 409, "already_finished")

	// Models are listed with the fields of API.md.
	ms, err := acme.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range ms {
		names[m.Name] = m.Version != "" && m.MaxBatch > 0 && len(m.Inputs) > 0 && len(m.Outputs) > 0
	}
	if !names["echo"] || !names["slow"] {
		t.Fatalf("models: %+v", ms)
	}
}

// watchTerminal counts the terminal events of one job on NATS.
func watchTerminal(t *testing.T, f *fleet, tenant, id string) func() int {
	nc, err := nats.Connect("nats://" + f.back.NATS.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var mu sync.Mutex
	n := 0
	_, err = nc.Subscribe(queue.EventSubject(tenant, id), func(m *nats.Msg) {
		var ev queue.Event
		if json.Unmarshal(m.Data, &ev) == nil && ev.Status.Terminal() {
			mu.Lock()
			n++
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	return func() int {
		_ = nc.Flush()
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// TestWorkerKilledMidJob: a worker killed with SIGKILL while it holds a
// job leaves it to another worker, and the job finishes exactly once.
func TestWorkerKilledMidJob(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_ACK_WAIT=2s"}})
	c := f.client("globex")
	ctx := ctxT(t, 2*time.Minute)
	input := []byte("survive a crash")
	j, err := c.Submit(ctx, client.Submit{Model: "slow", Input: bytes.NewReader(input)})
	if err != nil {
		t.Fatal(err)
	}
	terminal := watchTerminal(t, f, "globex", j.ID)
	for {
		cur, err := c.Get(ctx, j.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Status == "running" {
			break
		}
		if cur.Terminal() {
			t.Fatalf("job ended before the worker could be killed: %+v", cur)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.Workers[0].Signal(syscall.SIGKILL)
	f.Workers[0].Wait(10 * time.Second)
	if _, err := f.StartWorker(); err != nil {
		t.Fatal(err)
	}
	done, err := c.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, done, input)
	if done.Attempts != 2 {
		t.Fatalf("attempts = %d, want 2 (one killed, one finished)", done.Attempts)
	}
	// Give a duplicate run every chance to show itself.
	time.Sleep(3 * time.Second)
	if n := terminal(); n != 1 {
		t.Fatalf("%d terminal events, want exactly 1", n)
	}
	again, _ := c.Get(ctx, j.ID, 0)
	if again.Status != "succeeded" || !again.FinishedAt.Equal(*done.FinishedAt) {
		t.Fatalf("job changed after finishing: %+v", again)
	}
}

// TestNATSDown: while NATS is down the producer answers 503, never 202;
// when it is back, jobs flow again.
func TestNATSDown(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_PUBLISH_WAIT=2s"}})
	c := f.client("acme")
	ctx := ctxT(t, 2*time.Minute)
	f.back.NATS.Stop(5 * time.Second)
	for i := 0; i < 3; i++ {
		_, err := c.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("while down")})
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 503 || e.Code != "unavailable" {
			t.Fatalf("submit while NATS is down: %v, want 503 unavailable", err)
		}
	}
	resp, err := http.Get(f.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("/readyz while NATS is down: %d, want 503", resp.StatusCode)
	}
	natsBack(t, f, c)
}

// natsBack starts the fleet's NATS again and returns the first job
// accepted after it, once that job has run right.
func natsBack(t *testing.T, f *fleet, c *client.Client) *client.Job {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	nats2, err := fleettest.RestartNATS(f.back.NATS)
	if err != nil {
		t.Fatal(err)
	}
	f.back.NATS = nats2
	var j *client.Job
	for deadline := time.Now().Add(30 * time.Second); ; {
		j, err = c.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("back up")})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, done, []byte("back up"))
	return done
}

// TestRunMessageFollowsRecord: when a run message appears, the job's
// record already says scheduled (a worker that met a job still marked
// queued used to drop it, leaving it stuck).
func TestRunMessageFollowsRecord(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	ctx := ctxT(t, time.Minute)
	nc, err := nats.Connect("nats://" + f.back.NATS.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rdb := redis.NewClient(&redis.Options{Addr: f.back.Redis.Addr})
	defer rdb.Close()
	seen := make(chan string, 100)
	_, err = nc.Subscribe("jobs.run.>", func(m *nats.Msg) {
		var msg struct{ ID string }
		_ = json.Unmarshal(m.Data, &msg)
		st, _ := rdb.HGet(context.Background(), jobs.RecordKey(msg.ID), "status").Result()
		seen <- st
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	c := f.client("initech")
	for i := 0; i < 50; i++ {
		if _, err := c.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("order")}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		select {
		case st := <-seen:
			if st != "scheduled" && st != "running" && st != "succeeded" {
				t.Fatalf("run message %d appeared while its record said %q", i, st)
			}
		case <-ctx.Done():
			t.Fatalf("only %d run messages appeared", i)
		}
	}
}

// TestQueueQuota: a tenant over its max_queued unfinished jobs gets 429
// with Retry-After; finishing jobs frees the quota again.
func TestQueueQuota(t *testing.T) {
	f := startFleet(t, fleettest.Options{Workers: -1, MaxQueued: 3})
	ctx := ctxT(t, time.Minute)
	c := f.client("globex")
	var ids []string
	for i := 0; i < 3; i++ {
		j, err := c.SubmitBytes(ctx, "echo", []byte("q"), "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	_, err := c.SubmitBytes(ctx, "echo", []byte("one too many"), "text/plain")
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 429 || e.Code != "queue_quota_exceeded" || e.RetryAfter <= 0 {
		t.Fatalf("over the quota: %v, want 429 queue_quota_exceeded with Retry-After", err)
	}
	// Another tenant is not held to globex's quota.
	if _, err := f.client("acme").SubmitBytes(ctx, "echo", []byte("mine"), "text/plain"); err != nil {
		t.Fatalf("another tenant: %v", err)
	}
	if _, err := f.StartWorker(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := c.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SubmitBytes(ctx, "echo", []byte("room again"), "text/plain"); err != nil {
		t.Fatalf("after the jobs finished: %v", err)
	}
}
