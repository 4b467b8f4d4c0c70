package webhook

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
)

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://hooks.example.com/inferq", "https://hooks.example.com/inferq"},
		{"https://hooks.example.com/inferq?token=s3cr3t", "https://hooks.example.com/inferq?redacted"},
		{"https://bob:pw@hooks.example.com:8443/a/b?x=1&y=2#frag", "https://redacted@hooks.example.com:8443/a/b?redacted"},
		{"https://bob@hooks.example.com/", "https://redacted@hooks.example.com/"},
		{"http://[::1]:9/p?", "http://[::1]:9/p"},
		{"http://h/p#token", "http://h/p"},
		// Unparsable: cut by hand.
		{"http://bob:pw@h/%zz?token=s3cr3t", "http://redacted@h/%zz?redacted"},
		{"http://h:99999999999/x?token=s3cr3t", "http://h:99999999999/x?redacted"},
		{"http:bob:pw@h?token=s3cr3t", "http:redacted@h?redacted"},
	} {
		if got := RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRedactText(t *testing.T) {
	in := `webhook to 127.0.0.1:9: Post "http://bob:***@127.0.0.1:9/hooks?token=s3cr3t": dial tcp 127.0.0.1:9: connect: connection refused`
	want := `webhook to 127.0.0.1:9: Post "http://redacted@127.0.0.1:9/hooks?redacted": dial tcp 127.0.0.1:9: connect: connection refused`
	if got := RedactText(in); got != want {
		t.Fatalf("RedactText:\n got %s\nwant %s", got, want)
	}
}

// FuzzRedactURL: whatever the host and the rest of a URL, a token in its
// query or fragment and a password in its userinfo do not survive
// redaction, whether the URL parses or not.
func FuzzRedactURL(f *testing.F) {
	for _, s := range [][2]string{{"h", "/p"}, {"h:8080", "/%zz"}, {"[::1]", ""}, {"a@b", "/x?y"}, {"h h", "/\x00"}} {
		f.Add(s[0], s[1])
	}
	const marker = "Zq9SECRETx7"
	f.Fuzz(func(t *testing.T, host, rest string) {
		if strings.Contains(host+rest, "SECRET") {
			return
		}
		for _, raw := range []string{
			"https://" + host + rest + "?token=" + marker,
			"https://" + host + "?" + rest + marker,
			"https://" + host + rest + "#" + marker,
			"https://u:" + marker + "@" + host + rest,
			"https://" + marker + "@" + host + rest,
		} {
			if got := RedactURL(raw); strings.Contains(got, marker) {
				t.Fatalf("RedactURL(%q) = %q keeps the secret", raw, got)
			}
		}
	})
}

// syncBuffer is a log sink the asynq workers and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDeliverRedactsURLTokens: a delivery to a URL carrying a token in its
// query and credentials in its userinfo fails (nothing listens; then a
// 500), is retried and archived; neither the logs, nor the last error
// asynq keeps in Redis, nor ListFailed show the token, the user or the
// password. Before redaction the *url.Error of the failed POST printed the
// whole URL into all three.
func TestDeliverRedactsURLTokens(t *testing.T) {
	addr := startRedis(t)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	startServer(t, addr, newDeliverer(t, Config{Guard: loopbackGuard(t), Logger: log}), noDelay)

	// A port nobody listens on: the POST fails with a *url.Error.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	const token, user, pass = "tok-5ecret-q", "hookuser", "hookpass-5ecret"
	refused := newDelivery(t, "http://"+user+":"+pass+"@"+closed+"/hooks/inferq?token="+token)
	enqueue(t, addr, NewTask(refused, asynq.MaxRetry(1)))
	// A receiver that answers 500.
	rcv := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) })
	failing := newDelivery(t, strings.Replace(rcv.URL, "http://", "http://"+user+":"+pass+"@", 1)+"/hooks?token="+token)
	failing.ID += "-2"
	enqueue(t, addr, NewTask(failing, asynq.MaxRetry(1)))

	in := inspector(t, addr)
	var failed []Failed
	eventually(t, "both deliveries to be archived", func() bool {
		failed, err = ListFailed(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return len(failed) == 2
	})
	raw, err := in.ListArchivedTasks(QueueName)
	if err != nil {
		t.Fatal(err)
	}
	leaks := func(what, s string) {
		t.Helper()
		for _, secret := range []string{token, user, pass} {
			if strings.Contains(s, secret) {
				t.Errorf("%s shows %q:\n%s", what, secret, s)
			}
		}
	}
	for _, ti := range raw {
		leaks("asynq's last error in Redis", ti.LastErr)
	}
	for _, f := range failed {
		leaks("ListFailed", f.LastErr)
		leaks("ListFailed host", f.Host)
	}
	leaks("the delivery logs", logs.String())
	// Still useful: what failed, and where.
	byID := map[string]Failed{}
	for _, f := range failed {
		byID[f.TaskID] = f
	}
	if e := byID[refused.ID].LastErr; !strings.Contains(e, "connection refused") || !strings.Contains(e, closed+"/hooks/inferq?redacted") {
		t.Errorf("last error of the refused delivery: %q", e)
	}
	if e := byID[failing.ID].LastErr; !strings.Contains(e, "500") {
		t.Errorf("last error of the failing delivery: %q", e)
	}
}

// TestDeliverRedactsUnparsableURL: a URL that does not parse is archived
// at once, and its error does not quote it whole.
func TestDeliverRedactsUnparsableURL(t *testing.T) {
	del := newDelivery(t, "http://h/%zz?token=tok-5ecret-q")
	err := newDeliverer(t, Config{Guard: loopbackGuard(t)}).ProcessTask(context.Background(), NewTask(del))
	if !errors.Is(err, ErrInvalidURL) || !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask = %v, want ErrInvalidURL and SkipRetry", err)
	}
	if strings.Contains(err.Error(), "tok-5ecret-q") {
		t.Fatalf("error shows the token: %v", err)
	}
	var g Guard
	if err := g.CheckURL(context.Background(), del.URL); err == nil || strings.Contains(err.Error(), "tok-5ecret-q") {
		t.Fatalf("CheckURL = %v, want an error without the token", err)
	}
}
