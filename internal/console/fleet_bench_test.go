package console

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
	"github.com/inferq/inferq/internal/scheduler"
	"github.com/inferq/inferq/internal/tenants"
)

// BenchmarkFleetView draws the operator's fleet page with no job queued
// and with 100,000 queued jobs (records in Redis, messages in JetStream,
// held by a real scheduler with no worker to give them to), side by side:
// the page reads the scheduler's snapshot and the heartbeats, never the
// jobs, so the two should cost about the same.
//
//	go test -run '^$' -bench FleetView -benchtime 50x ./internal/console/
func BenchmarkFleetView(b *testing.B) {
	for _, n := range []int{0, 100_000} {
		b.Run("queued="+strconv.Itoa(n), func(b *testing.B) { benchFleet(b, n) })
	}
}

func benchFleet(b *testing.B, n int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := fleettest.Redis(b)
	nc := fleettest.NATS(b)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if err := queue.Streams(ctx, js, 1); err != nil {
		b.Fatal(err)
	}
	kv, err := coord.Open(ctx, js, 1)
	if err != nil {
		b.Fatal(err)
	}
	store := jobs.NewStore(rdb, time.Hour)
	start := time.Now()
	const chunk = 2000
	for done := 0; done < n; done += chunk {
		now := time.Now()
		batch := make([]*jobs.Job, 0, chunk)
		for i := done; i < min(done+chunk, n); i++ {
			batch = append(batch, &jobs.Job{ID: jobs.NewID(), Tenant: "acme", Model: "echo", Tier: "premium",
				CreatedAt: now, Deadline: now.Add(time.Hour), Input: []byte{1}, ContentType: "application/octet-stream", InputSize: 1})
		}
		if err := store.CreateMany(ctx, batch); err != nil {
			b.Fatal(err)
		}
		var futs []jetstream.PubAckFuture
		for _, j := range batch {
			f, err := js.PublishMsgAsync(&nats.Msg{Subject: queue.SubmitSubject(j.Tier), Data: jobs.MessageFor(j).Encode(),
				Header: nats.Header{jetstream.MsgIDHeader: []string{j.ID}}})
			if err != nil {
				b.Fatal(err)
			}
			futs = append(futs, f)
		}
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
	}
	sched, err := scheduler.New(scheduler.Config{NATS: nc, JS: js, Store: store, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = sched.Run(ctx) }()
	for {
		q, ok, _ := coord.ReadQueues(ctx, kv.State)
		held := 0
		for _, s := range q.Stats {
			held += s.Queued
		}
		if ok && held == n {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Logf("%d jobs recorded, queued and held by the scheduler in %s", n, time.Since(start).Round(time.Millisecond))
	reg, err := tenants.Parse([]byte("tenants: [{name: acme, tier: premium}]"))
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(Config{Store: store, KV: kv, Tenants: reg, API: noAPI{}})
	if err != nil {
		b.Fatal(err)
	}
	c.sample(ctx)
	id := randomToken()
	rdb.HSet(ctx, sessionKey(id), "role", "operator", "csrf", "x")
	h := c.Handler()
	want := `data-queued="` + strconv.Itoa(n) + `"`
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest("GET", "/ui/fleet", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: id})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			b.Fatalf("fleet page: %d, %s not in it", rec.Code, want)
		}
	}
}
