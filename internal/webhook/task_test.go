package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

func TestRetryDelaySchedule(t *testing.T) {
	task := NewTask(Delivery{ID: "msg_1"})
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
		10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}
	if got := Schedule(); len(got) != len(want) || MaxRetry != len(want) {
		t.Fatalf("Schedule() = %v, MaxRetry %d; want %v", got, MaxRetry, want)
	}
	var total time.Duration
	for n, w := range want {
		total += w
		for range 20 {
			d := RetryDelay(n, errors.New("boom"), task)
			if d < w*9/10 || d > w*11/10 {
				t.Fatalf("RetryDelay(%d) = %v, want %v ±10%%", n, d, w)
			}
		}
	}
	if total < 24*time.Hour {
		t.Fatalf("schedule covers %v, want at least 24h", total)
	}
	if d := RetryDelay(50, nil, task); d < 24*time.Hour*9/10 {
		t.Fatalf("RetryDelay past the schedule = %v, want the last step", d)
	}
	// Retry-After later than the schedule wins, capped; earlier loses.
	if d := RetryDelay(0, &DeliveryError{StatusCode: 429, RetryAfter: time.Minute}, task); d != time.Minute {
		t.Fatalf("RetryDelay with Retry-After 1m = %v", d)
	}
	if d := RetryDelay(0, &DeliveryError{StatusCode: 429, RetryAfter: 48 * time.Hour}, task); d != MaxRetryAfter {
		t.Fatalf("RetryDelay with Retry-After 48h = %v, want %v", d, MaxRetryAfter)
	}
	if d := RetryDelay(3, &DeliveryError{StatusCode: 503, RetryAfter: time.Second}, task); d < 2*time.Hour*9/10 {
		t.Fatalf("RetryDelay with a short Retry-After = %v, want the schedule's 2h", d)
	}
	// Other task types keep asynq's default.
	if d := RetryDelay(0, nil, asynq.NewTask("other", nil)); d < 15*time.Second {
		t.Fatalf("RetryDelay for another task type = %v, want asynq's default (>= 15s)", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999999999999", MaxRetryAfter, true},
		{"864000", MaxRetryAfter, true},
		{"", 0, false},
		{"-5", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
	}
	for _, c := range cases {
		d, ok := ParseRetryAfter(c.in, now)
		if d != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, d, ok, c.want, c.ok)
		}
	}
}

func TestNewTask(t *testing.T) {
	del := Delivery{ID: "msg_x", Type: EventJobFailed, Tenant: "acme", URL: "https://example.com/h", Body: []byte(`{"a":1}`)}
	task := NewTask(del)
	if task.Type() != TaskType {
		t.Fatalf("type %q", task.Type())
	}
	var back Delivery
	if err := json.Unmarshal(task.Payload(), &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != del.ID || back.URL != del.URL || back.Tenant != del.Tenant || string(back.Body) != string(del.Body) {
		t.Fatalf("payload round trip: %+v", back)
	}
	if strings.Contains(string(task.Payload()), "whsec") {
		t.Fatal("payload holds a secret")
	}
}

func TestNewEvent(t *testing.T) {
	now := time.Date(2026, 11, 29, 13, 4, 5, 678_000_000, time.FixedZone("CET", 3600))
	id, body, err := NewEvent(EventBatchCompleted, map[string]any{"id": "b1", "jobs": 3}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "msg_") || len(id) < 20 {
		t.Fatalf("id %q", id)
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != EventBatchCompleted || ev.Timestamp != "2026-11-29T12:04:05.678Z" || string(ev.Data) != `{"id":"b1","jobs":3}` {
		t.Fatalf("event %+v (%s)", ev, body)
	}
	id2, _, _ := NewEvent(EventJobSucceeded, nil, now)
	if id2 == id {
		t.Fatal("two events share an id")
	}
	if _, _, err := NewEvent("job.exploded", nil, now); err == nil {
		t.Fatal("unknown event type accepted")
	}
}
