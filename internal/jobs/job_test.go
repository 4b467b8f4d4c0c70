package jobs

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTransitions(t *testing.T) {
	all := []State{Queued, Scheduled, Running, Succeeded, Failed, Canceled, Expired}
	allowed := map[[2]State]bool{
		{Queued, Scheduled}: true, {Scheduled, Running}: true, {Running, Running}: true,
		{Running, Succeeded}: true, {Queued, Failed}: true, {Scheduled, Failed}: true, {Running, Failed}: true,
		{Queued, Canceled}: true, {Scheduled, Canceled}: true, {Running, Canceled}: true,
		{Succeeded, Expired}: true, {Failed, Expired}: true, {Canceled, Expired}: true,
	}
	for _, from := range all {
		for _, to := range all {
			if got, want := CanTransition(from, to), allowed[[2]State{from, to}]; got != want {
				t.Errorf("%s -> %s: got %v, want %v", from, to, got, want)
			}
		}
	}
	// The rules that keep "exactly one terminal state, once".
	for _, term := range []State{Succeeded, Failed, Canceled} {
		if !term.Terminal() {
			t.Errorf("%s should be terminal", term)
		}
		for _, to := range []State{Succeeded, Failed, Canceled, Running, Scheduled, Queued} {
			if CanTransition(term, to) {
				t.Errorf("a %s job must not move to %s", term, to)
			}
		}
	}
	for _, s := range []State{Queued, Scheduled, Running} {
		if s.Terminal() {
			t.Errorf("%s should not be terminal", s)
		}
	}
}

func TestMessageRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 123e6, time.UTC)
	j := &Job{ID: NewID(), Tenant: "acme", Tier: "premium", Model: "echo", CreatedAt: now,
		Deadline: now.Add(5 * time.Second), InputKey: "inputs/acme/x", ContentType: "image/png", InputSize: 42}
	m, err := DecodeMessage(MessageFor(j).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, MessageFor(j)) {
		t.Fatalf("round trip: %+v != %+v", m, MessageFor(j))
	}
	// An inline input travels in the message, byte for byte.
	j.InputKey, j.Input = "", []byte{0, 1, 2, 0xff, '"'}
	m, err = DecodeMessage(MessageFor(j).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, MessageFor(j)) {
		t.Fatalf("inline round trip: %+v != %+v", m, MessageFor(j))
	}
}

func TestDecodeMessageRefuses(t *testing.T) {
	good := Message{V: 1, ID: "a", Tenant: "t", Tier: "bulk", Model: "m", Deadline: time.Now(), InputKey: "inputs/t/a"}
	for name, b := range map[string][]byte{
		"not json":      []byte("{"),
		"other version": func() []byte { m := good; m.V = 2; return m.Encode() }(),
		"no id":         func() []byte { m := good; m.ID = ""; return m.Encode() }(),
		"no deadline":   func() []byte { m := good; m.Deadline = time.Time{}; return m.Encode() }(),
		"no input":      func() []byte { m := good; m.InputKey = ""; return m.Encode() }(),
		"two inputs":    func() []byte { m := good; m.Input = []byte("x"); return m.Encode() }(),
	} {
		if _, err := DecodeMessage(b); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: got %v, want ErrBadMessage", name, err)
		}
	}
	if _, err := DecodeMessage(good.Encode()); err != nil {
		t.Fatal(err)
	}
}

func TestJobJSON(t *testing.T) {
	created := time.Date(2026, 11, 29, 12, 0, 0, 5e6, time.UTC)
	b, err := json.Marshal(Job{ID: "x", Tenant: "secret-tenant", Status: Queued, CreatedAt: created, Deadline: created.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"created_at":"2026-11-29T12:00:00.005Z"`, `"deadline":"2026-11-29T12:01:00.005Z"`, `"started_at":null`, `"result":null`, `"met_deadline":null`} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %s", s, want)
		}
	}
	if strings.Contains(s, "secret-tenant") || strings.Contains(s, "input_key") {
		t.Errorf("internal fields leak: %s", s)
	}
}

func TestNewIDsSortAndDiffer(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 1000; i++ {
		id := NewID()
		if seen[id] || id < prev && id[:10] != prev[:10] {
			t.Fatalf("id %s after %s", id, prev)
		}
		seen[id], prev = true, id
	}
}
