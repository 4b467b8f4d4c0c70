package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// received is one request as the test receiver saw it.
type received struct {
	header http.Header
	body   []byte
	err    error // Verify's verdict
}

// receiver is a real HTTP endpoint whose answer the test scripts.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, w http.ResponseWriter) // n counts from 1
	notify chan struct{}
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter)) *receiver {
	r := &receiver{answer: answer, notify: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rec := received{header: req.Header.Clone(), body: body,
			err: Verify(testSecret, req.Header, body, 0, time.Now())}
		r.mu.Lock()
		r.got = append(r.got, rec)
		n := len(r.got)
		answer := r.answer
		r.mu.Unlock()
		answer(n, w)
		r.notify <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *receiver) setAnswer(f func(n int, w http.ResponseWriter)) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

func (r *receiver) wait(t *testing.T, n int) {
	t.Helper()
	for len(r.requests()) < n {
		select {
		case <-r.notify:
		case <-time.After(60 * time.Second):
			t.Fatalf("receiver got %d requests, waited for %d", len(r.requests()), n)
		}
	}
}

func secrets(tenant string) (string, bool) {
	if tenant == "acme" {
		return testSecret, true
	}
	return "", false
}

func loopbackGuard(t *testing.T) Guard {
	allow, err := ParseAllowNets("127.0.0.0/8,::1/128")
	if err != nil {
		t.Fatal(err)
	}
	return Guard{Allow: allow}
}

func newDeliverer(t *testing.T, cfg Config) *Deliverer {
	t.Helper()
	if cfg.Secrets == nil {
		cfg.Secrets = secrets
	}
	d, err := NewDeliverer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newDelivery(t *testing.T, url string) Delivery {
	t.Helper()
	id, body, err := NewEvent(EventJobSucceeded, map[string]any{"id": "job_1", "status": "succeeded"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return Delivery{ID: id, Type: EventJobSucceeded, Tenant: "acme", URL: url, Body: body}
}

func noDelay(int, error, *asynq.Task) time.Duration { return 0 }

func TestDeliverRetriesWithOneWebhookID(t *testing.T) {
	addr := startRedis(t)
	rcv := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n <= 2 {
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	startServer(t, addr, newDeliverer(t, Config{Guard: loopbackGuard(t)}), noDelay)
	del := newDelivery(t, rcv.URL+"/hook?token=abc")
	enqueue(t, addr, NewTask(del))

	rcv.wait(t, 3)
	in := inspector(t, addr)
	eventually(t, "the task to leave the queue", func() bool {
		_, err := in.GetTaskInfo(QueueName, del.ID)
		return errors.Is(err, asynq.ErrTaskNotFound)
	})
	got := rcv.requests()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(got))
	}
	for i, r := range got {
		if id := r.header.Get("webhook-id"); id != del.ID {
			t.Errorf("request %d: webhook-id %q, want %q", i+1, id, del.ID)
		}
		if r.err != nil {
			t.Errorf("request %d: signature does not verify: %v", i+1, r.err)
		}
		if string(r.body) != string(del.Body) {
			t.Errorf("request %d: body %s, want %s", i+1, r.body, del.Body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("request %d: content-type %q", i+1, ct)
		}
	}
}

func TestDeliverExhaustedIsArchivedAndReplayed(t *testing.T) {
	addr := startRedis(t)
	rcv := newReceiver(t, func(_ int, w http.ResponseWriter) {
		http.Error(w, "down", http.StatusBadGateway)
	})
	startServer(t, addr, newDeliverer(t, Config{Guard: loopbackGuard(t)}), noDelay)
	del := newDelivery(t, rcv.URL)
	enqueue(t, addr, NewTask(del, asynq.MaxRetry(2)))

	in := inspector(t, addr)
	var failed []Failed
	eventually(t, "the delivery to be archived", func() bool {
		var err error
		failed, err = ListFailed(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return len(failed) == 1
	})
	f := failed[0]
	if f.TaskID != del.ID || f.Delivery.ID != del.ID || f.Delivery.Tenant != "acme" || f.Delivery.Type != EventJobSucceeded {
		t.Fatalf("failed entry %+v does not describe delivery %s", f, del.ID)
	}
	if f.Retried != 2 || !strings.Contains(f.LastErr, "502") {
		t.Fatalf("failed entry: retried %d, last error %q; want 2 and a 502", f.Retried, f.LastErr)
	}
	if n := len(rcv.requests()); n != 3 {
		t.Fatalf("receiver got %d requests, want 3", n)
	}

	rcv.setAnswer(func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusOK) })
	if err := Replay(context.Background(), in, f.TaskID); err != nil {
		t.Fatal(err)
	}
	rcv.wait(t, 4)
	last := rcv.requests()[3]
	if last.header.Get("webhook-id") != del.ID || last.err != nil {
		t.Fatalf("replayed request: webhook-id %q, verify %v", last.header.Get("webhook-id"), last.err)
	}
	eventually(t, "the archive to empty", func() bool {
		failed, err := ListFailed(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return len(failed) == 0
	})
}

func TestDeliverGoneStopsForGood(t *testing.T) {
	addr := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	gone := NewGoneList(rdb)
	rcv := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusGone) })
	// The real schedule: were a 410 retried, the test would see no retry
	// for minutes and the archive check below would fail.
	startServer(t, addr, newDeliverer(t, Config{Guard: loopbackGuard(t), Gone: gone}), RetryDelay)
	in := inspector(t, addr)

	first := newDelivery(t, rcv.URL)
	enqueue(t, addr, NewTask(first))
	eventually(t, "the 410 delivery to be archived", func() bool {
		failed, err := ListFailed(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return len(failed) == 1 && failed[0].Retried == 0 && strings.Contains(failed[0].LastErr, "410")
	})
	if isGone, err := gone.IsGone(context.Background(), "acme", rcv.URL); err != nil || !isGone {
		t.Fatalf("IsGone = %v, %v; want true", isGone, err)
	}

	second := newDelivery(t, rcv.URL)
	enqueue(t, addr, NewTask(second, asynq.Retention(time.Hour)))
	eventually(t, "the second delivery to complete", func() bool {
		info, err := in.GetTaskInfo(QueueName, second.ID)
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("receiver got %d requests, want only the first", n)
	}

	// Another tenant's URL list is its own.
	if isGone, err := gone.IsGone(context.Background(), "other", rcv.URL); err != nil || isGone {
		t.Fatalf("IsGone for another tenant = %v, %v; want false", isGone, err)
	}
	if err := gone.Forget(context.Background(), "acme", rcv.URL); err != nil {
		t.Fatal(err)
	}
	if isGone, _ := gone.IsGone(context.Background(), "acme", rcv.URL); isGone {
		t.Fatal("Forget did not lift the mark")
	}
}

func TestDeliverHonoursRetryAfter(t *testing.T) {
	addr := startRedis(t)
	rcv := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	type seen struct {
		d   time.Duration
		err error
	}
	ch := make(chan seen, 10)
	startServer(t, addr, newDeliverer(t, Config{Guard: loopbackGuard(t)}), func(n int, err error, task *asynq.Task) time.Duration {
		ch <- seen{RetryDelay(n, err, task), err}
		return 0 // the delay itself is checked, not waited for
	})
	enqueue(t, addr, NewTask(newDelivery(t, rcv.URL)))
	rcv.wait(t, 2)
	s := <-ch
	var de *DeliveryError
	if !errors.As(s.err, &de) || de.StatusCode != http.StatusServiceUnavailable || de.RetryAfter != 7*time.Second {
		t.Fatalf("retry error %#v, want a 503 DeliveryError with Retry-After 7s", s.err)
	}
	if s.d != 7*time.Second {
		t.Fatalf("retry delay %v, want the receiver's 7s over the schedule's ~5s", s.d)
	}
}

func TestDeliverRefusesLoopbackUnlessAllowed(t *testing.T) {
	rcv := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusOK) })
	ctx := context.Background()

	var deny Guard
	if err := deny.CheckURL(ctx, rcv.URL); !errors.Is(err, ErrForbidden) {
		t.Fatalf("CheckURL(%s) without allow = %v, want ErrForbidden", rcv.URL, err)
	}
	allow := loopbackGuard(t)
	if err := allow.CheckURL(ctx, rcv.URL); err != nil {
		t.Fatalf("CheckURL(%s) with 127.0.0.0/8 allowed = %v", rcv.URL, err)
	}

	// At delivery: refused for good, nothing sent.
	del := newDelivery(t, rcv.URL)
	err := newDeliverer(t, Config{}).ProcessTask(ctx, NewTask(del))
	if !errors.Is(err, ErrForbidden) || !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask to loopback = %v, want ErrForbidden and SkipRetry", err)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("receiver got %d requests, want none", n)
	}
	if err := newDeliverer(t, Config{Guard: allow}).ProcessTask(ctx, NewTask(del)); err != nil {
		t.Fatalf("ProcessTask with loopback allowed = %v", err)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("receiver got %d requests, want 1", n)
	}
}

func TestDeliverDoesNotFollowRedirects(t *testing.T) {
	target := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusOK) })
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirector.Close)
	err := newDeliverer(t, Config{Guard: loopbackGuard(t)}).ProcessTask(context.Background(), NewTask(newDelivery(t, redirector.URL)))
	var de *DeliveryError
	if !errors.As(err, &de) || de.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("ProcessTask = %v, want a retryable 307", err)
	}
	if n := len(target.requests()); n != 0 {
		t.Fatalf("redirect target got %d requests, want none", n)
	}
}

func TestDeliverWithoutSecretIsArchived(t *testing.T) {
	rcv := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusOK) })
	del := newDelivery(t, rcv.URL)
	del.Tenant = "nobody"
	err := newDeliverer(t, Config{Guard: loopbackGuard(t)}).ProcessTask(context.Background(), NewTask(del))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask = %v, want SkipRetry", err)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("receiver got %d unsigned requests", n)
	}
}
