package e2e

import (
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/webhook"
)

// TestWebhookTokensRedacted: a job whose webhook URL carries a token in
// its query and credentials in its userinfo, sent to a port where nothing
// listens, is retried and archived. The token, user and password appear
// nowhere an operator reads: not in `inferq webhooks failed` (table and
// JSON), not in the last error asynq keeps in Redis, not in any log of
// the fleet. What failed, and where, still shows.
func TestWebhookTokensRedacted(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{webhookSchedule}})
	ctx := ctxT(t, 2*time.Minute)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	const token, user, pass = "tok-5ecret-q", "hookuser", "hookpass-5ecret"
	hook := "http://" + user + ":" + pass + "@" + closed + "/hooks/inferq?token=" + token
	j, err := f.client("acme").Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("redact me"), WebhookURL: hook})
	if err != nil {
		t.Fatal(err)
	}

	var failed []struct {
		WebhookID string `json:"webhook_id"`
		Host      string `json:"host"`
		LastError string `json:"last_error"`
	}
	var listing []byte
	for deadline := time.Now().Add(60 * time.Second); ; {
		listing = cli(t, f, "acme", "webhooks", "failed", "--json")
		if err := json.Unmarshal(listing, &failed); err != nil {
			t.Fatal(err)
		}
		if len(failed) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: no failed webhook listed", j.ID)
		}
		time.Sleep(200 * time.Millisecond)
	}
	human := cli(t, f, "acme", "webhooks", "failed")

	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: f.back.Redis.Addr})
	defer in.Close()
	raw, err := in.ListArchivedTasks(webhook.QueueName)
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{"inferq webhooks failed --json": string(listing), "inferq webhooks failed": string(human)}
	for _, ti := range raw {
		texts["asynq's last error in Redis"] += ti.LastErr + "\n"
	}
	for _, name := range f.Logs() {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		texts[name] = string(b)
	}
	for what, s := range texts {
		for _, secret := range []string{token, user, pass} {
			if i := strings.Index(s, secret); i >= 0 {
				t.Errorf("%s shows %q: ...%s...", what, secret, s[max(0, i-200):min(len(s), i+100)])
			}
		}
	}
	if len(failed) != 1 || failed[0].Host != closed || !strings.Contains(failed[0].LastError, "connection refused") ||
		!strings.Contains(failed[0].LastError, closed+"/hooks/inferq?redacted") {
		t.Fatalf("failed webhooks: %s", listing)
	}
	if !strings.Contains(string(human), "connection refused") {
		t.Fatalf("human listing:\n%s", human)
	}
}
