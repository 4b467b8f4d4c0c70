package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
)

// webhookSchedule replaces the Standard Webhooks retry schedule (5 s,
// 5 min, ...) in the webhook tests: two quick retries, then the archive.
const webhookSchedule = "INFERQ_WEBHOOK_RETRY_SCHEDULE=200ms,200ms"

// cli runs the inferq command against f as tenant, returning stdout.
func cli(t *testing.T, f *fleet, tenant string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "inferq"), args...)
	cmd.Env = append(f.Env(), "INFERQ_URL="+f.URL, "INFERQ_API_KEY="+f.Tenants[tenant].Key)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("inferq %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// TestWebhooks: signed webhooks against real receivers. One that fails
// twice gets the event three times under one webhook-id; one that always
// fails ends archived, `inferq webhooks failed` lists it and `inferq
// webhooks replay` sends it again; a cancel sends job.canceled; the SDK's
// WebhookHandler verifies them.
func TestWebhooks(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{webhookSchedule}})
	ctx := ctxT(t, 2*time.Minute)
	c := f.client("acme")
	secret := f.Tenants["acme"].WebhookSecret

	flaky := fleettest.NewReceiver(func(n int, _ *http.Request) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	t.Cleanup(flaky.Close)
	down := fleettest.NewReceiver(func(int, *http.Request) int { return http.StatusServiceUnavailable })
	t.Cleanup(down.Close)
	var mu sync.Mutex
	var verified []*client.WebhookEvent
	sdk := fleettest.NewHandlerReceiver(client.WebhookHandler(secret, func(_ context.Context, e *client.WebhookEvent) error {
		mu.Lock()
		defer mu.Unlock()
		verified = append(verified, e)
		return nil
	}))
	t.Cleanup(sdk.Close)

	j1, err := c.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("flaky receiver"), WebhookURL: flaky.URL + "/hooks?token=t1"})
	if err != nil {
		t.Fatal(err)
	}
	j2, err := c.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("receiver down"), WebhookURL: down.URL})
	if err != nil {
		t.Fatal(err)
	}
	// A slow job, canceled at once: job.canceled.
	j3, err := c.Submit(ctx, client.Submit{Model: "slow", Input: strings.NewReader("cancel me"), WebhookURL: sdk.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cancel(ctx, j3.ID); err != nil {
		t.Fatal(err)
	}
	j4, err := c.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("sdk"), WebhookURL: sdk.URL})
	if err != nil {
		t.Fatal(err)
	}
	// A batch of slow jobs, canceled: its batch.completed comes from the
	// cancel.
	slow := make([]client.File, 5)
	for i := range slow {
		slow[i] = client.File{Name: fmt.Sprintf("s%d", i), Reader: strings.NewReader("slow")}
	}
	sb, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "slow", Files: slow, WebhookURL: sdk.URL})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := c.CancelBatch(ctx, sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !cb.Done || cb.Counts.Canceled == 0 || cb.Counts.Ended() != 5 {
		t.Fatalf("canceled batch: %+v", cb)
	}
	_, err = c.CancelBatch(ctx, sb.ID)
	wantAPIError(t, "cancel an ended batch", err, 409, "already_finished")

	// Three attempts, one webhook-id, each signed.
	if err := flaky.WaitFor(ctx, func(got []fleettest.Received) bool { return len(got) >= 3 }); err != nil {
		t.Fatal(err)
	}
	got := flaky.Requests()
	id := got[0].Header.Get("webhook-id")
	for i, r := range got {
		e, err := client.VerifyWebhook(secret, r.Header, r.Body)
		if err != nil {
			t.Fatalf("attempt %d does not verify: %v", i+1, err)
		}
		jd, _ := e.Job()
		if e.ID != id || e.Type != client.EventJobSucceeded || jd.ID != j1.ID || jd.Status != "succeeded" || jd.Result == nil {
			t.Fatalf("attempt %d: id %s (first %s), %s", i+1, e.ID, id, r.Body)
		}
		if i < 2 && r.Status != 500 || i == 2 && r.Status != 204 {
			t.Fatalf("attempt %d answered %d", i+1, r.Status)
		}
	}
	// A verifier with another secret refuses it.
	if _, err := client.VerifyWebhook("whsec_"+strings.Repeat("A", 32), got[0].Header, got[0].Body); !errors.Is(err, client.ErrWebhookSignature) {
		t.Fatalf("wrong secret: %v", err)
	}

	// The SDK handler saw job.canceled for j3, job.succeeded for j4 and
	// batch.completed for the canceled batch (no per-job events: the
	// batch did not ask for them).
	if err := sdk.WaitFor(ctx, func(got []fleettest.Received) bool { return len(got) >= 3 }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // room for an unwanted event to show
	mu.Lock()
	types := map[string]string{}
	for _, e := range verified {
		var subject struct{ ID string }
		json.Unmarshal(e.Data, &subject)
		types[subject.ID] = e.Type
	}
	n := len(verified)
	mu.Unlock()
	if n != 3 || types[j3.ID] != client.EventJobCanceled || types[j4.ID] != client.EventJobSucceeded || types[sb.ID] != client.EventBatchCompleted {
		t.Fatalf("verified events by subject (%d): %v", n, types)
	}

	// The receiver that is down: archived after three attempts, listed,
	// replayed once it is back.
	var failed []struct {
		WebhookID string `json:"webhook_id"`
		Type      string `json:"type"`
		Tenant    string `json:"tenant"`
		Retried   int    `json:"retried"`
		LastError string `json:"last_error"`
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		failed = nil
		if err := json.Unmarshal(cli(t, f, "acme", "webhooks", "failed", "--json"), &failed); err != nil {
			t.Fatal(err)
		}
		if len(failed) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(failed) != 1 || failed[0].Type != client.EventJobSucceeded || failed[0].Tenant != "acme" || failed[0].Retried != 2 ||
		!strings.Contains(failed[0].LastError, "503") || failed[0].WebhookID != down.Requests()[0].Header.Get("webhook-id") {
		t.Fatalf("failed webhooks: %+v", failed)
	}
	if n := len(down.Requests()); n != 3 {
		t.Fatalf("receiver that is down got %d attempts, want 3", n)
	}
	human := string(cli(t, f, "acme", "webhooks", "failed"))
	if !strings.Contains(human, failed[0].WebhookID) || !strings.Contains(human, "job.succeeded") {
		t.Fatalf("human listing:\n%s", human)
	}
	down.SetAnswer(func(int, *http.Request) int { return http.StatusOK })
	cli(t, f, "acme", "webhooks", "replay", failed[0].WebhookID)
	if err := down.WaitFor(ctx, func(got []fleettest.Received) bool { return len(got) >= 4 }); err != nil {
		t.Fatal(err)
	}
	last := down.Requests()[3]
	if e, err := client.VerifyWebhook(secret, last.Header, last.Body); err != nil || e.ID != failed[0].WebhookID {
		t.Fatalf("replayed webhook: %v, %+v", err, e)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := json.Unmarshal(cli(t, f, "acme", "webhooks", "failed", "--json"), &failed); err != nil {
			t.Fatal(err)
		}
		if len(failed) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failed after the replay: %+v", failed)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = j2
}

// TestWebhookDestinationRefused: with no network allowed past the SSRF
// guard, loopback, private and metadata webhook URLs are refused at
// submit, for jobs and batches alike, and nothing is queued.
func TestWebhookDestinationRefused(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_WEBHOOK_ALLOW_NETS="}})
	ctx := ctxT(t, time.Minute)
	c := f.client("acme")
	rcv := fleettest.NewReceiver(nil)
	t.Cleanup(rcv.Close)
	for _, u := range []string{rcv.URL, "http://localhost:9/x", "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/", "http://[::1]:8080/"} {
		_, err := c.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("x"), WebhookURL: u})
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 400 || e.Code != "webhook_url_forbidden" {
			t.Fatalf("job with webhook %s: %v, want 400 webhook_url_forbidden", u, err)
		}
	}
	_, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", WebhookURL: rcv.URL,
		Files: []client.File{{Name: "a.txt", Reader: strings.NewReader("a")}}})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Code != "webhook_url_forbidden" {
		t.Fatalf("batch with a loopback webhook: %v", err)
	}
	if objs := s3Objects(t, f); len(objs) != 0 {
		t.Fatalf("refused submits left %v", objs)
	}
	if n := len(rcv.Requests()); n != 0 {
		t.Fatalf("receiver got %d requests", n)
	}
}
