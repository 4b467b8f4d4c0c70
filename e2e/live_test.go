package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
)

// redisReads counts the job-record reads Redis has served (HGETALL is how
// a job record is read; a waiter that polled would show up here).
func redisReads(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_hgetall:calls="); ok {
			n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
			return n
		}
	}
	return 0
}

type sseEvent struct {
	name string
	data []byte
}

// TestLiveStatusWithoutPolling: a long-poll (?wait=) and an SSE stream
// wait for a job that no worker can run yet; while they wait, Redis serves
// no job read at all; when a worker starts, both see the job finish, woken
// by the job's NATS events.
func TestLiveStatusWithoutPolling(t *testing.T) {
	f := startFleet(t, fleettest.Options{Workers: -1})
	ctx := ctxT(t, 2*time.Minute)
	c := f.client("acme")
	rdb := redis.NewClient(&redis.Options{Addr: f.back.Redis.Addr})
	t.Cleanup(func() { rdb.Close() })
	nc, err := nats.Connect("nats://" + f.back.NATS.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	j, err := c.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("live")})
	if err != nil {
		t.Fatal(err)
	}
	natsEvents := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe(queue.EventSubject("acme", j.ID), natsEvents); err != nil {
		t.Fatal(err)
	}
	nc.Flush()

	polled, resp := waitBothWays(t, ctx, f, c, j.ID, time.Minute)
	sse := make(chan sseEvent, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = []byte(strings.TrimPrefix(line, "data: "))
			case line == "" && ev.name != "":
				sse <- ev
				ev = sseEvent{}
			}
		}
		close(sse)
	}()
	first := <-sse
	if first.name != "status" || !strings.Contains(string(first.data), `"status":"`) {
		t.Fatalf("first event: %s %s", first.name, first.data)
	}

	// Both waiters hold: no job is read from Redis meanwhile.
	time.Sleep(500 * time.Millisecond)
	before := redisReads(t, rdb)
	if before == 0 {
		t.Fatal("no HGETALL counted at all: the waiters' first reads should show (is commandstats working?)")
	}
	time.Sleep(2 * time.Second)
	if reads := redisReads(t, rdb) - before; reads != 0 {
		t.Fatalf("Redis served %d job reads while the waiters held: they poll", reads)
	}
	select {
	case got := <-polled:
		t.Fatalf("long-poll answered before the job ended: %+v", got)
	default:
	}

	if _, err := f.StartWorker(); err != nil {
		t.Fatal(err)
	}
	var final *client.Job
	select {
	case final = <-polled:
	case <-ctx.Done():
		t.Fatal("long-poll did not answer")
	}
	if final.Status != "succeeded" {
		t.Fatalf("long-poll answered %+v", final)
	}
	var last sseEvent
	for ev := range sse {
		last = ev
		if ev.name == "job" {
			break
		}
	}
	var sj client.Job
	if last.name != "job" || json.Unmarshal(last.data, &sj) != nil || sj.Status != "succeeded" || sj.ID != j.ID {
		t.Fatalf("last SSE event: %s %s", last.name, last.data)
	}
	// What woke them: the job's events on NATS.
	terminal := false
	for len(natsEvents) > 0 {
		var ev queue.Event
		if json.Unmarshal((<-natsEvents).Data, &ev) == nil && ev.Status == "succeeded" {
			terminal = true
		}
	}
	if !terminal {
		t.Fatal("no succeeded event on the job's NATS subject")
	}
}

// TestWaitersSeeAnEndWithoutItsEvent: events are not stored, so a waiter
// whose job ended without an event reaching it (a lost publish, a NATS
// blip) must still learn of the end: the long-poll answers and the SSE
// stream closes with the final job, from the record, within a recheck.
func TestWaitersSeeAnEndWithoutItsEvent(t *testing.T) {
	f := startFleet(t, fleettest.Options{Workers: -1})
	ctx := ctxT(t, time.Minute)
	c := f.client("acme")
	rdb := redis.NewClient(&redis.Options{Addr: f.back.Redis.Addr})
	t.Cleanup(func() { rdb.Close() })
	j, err := c.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("silent end")})
	if err != nil {
		t.Fatal(err)
	}
	polled, resp := waitBothWays(t, ctx, f, c, j.ID, 45*time.Second)
	streamed := make(chan string, 1)
	go func() {
		var last string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				last = d
			}
		}
		streamed <- last
	}()
	time.Sleep(time.Second) // both are waiting
	// The job ends in its record alone: no event is published.
	if err := rdb.HSet(ctx, jobs.RecordKey(j.ID), "status", "canceled").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-polled:
		if got == nil || got.Status != "canceled" {
			t.Fatalf("long-poll answered %+v, want the canceled job", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("long-poll still waiting 30 s after its job ended without an event")
	}
	select {
	case last := <-streamed:
		var final client.Job
		if json.Unmarshal([]byte(last), &final) != nil || final.Status != "canceled" {
			t.Fatalf("SSE stream's last data %s, want the canceled job", last)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("SSE stream still open 30 s after its job ended without an event")
	}
}

// waitBothWays waits on acme's job id as the two kinds of waiter do: a
// long-poll of up to wait, whose answer comes on the channel, and an SSE
// stream, whose response it returns open (it ends with the test).
func waitBothWays(t *testing.T, ctx context.Context, f *fleet, c *client.Client, id string, wait time.Duration) (<-chan *client.Job, *http.Response) {
	t.Helper()
	polled := make(chan *client.Job, 1)
	go func() {
		got, err := c.Get(ctx, id, wait)
		if err != nil {
			t.Error(err)
		}
		polled <- got
	}()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.URL+"/v1/jobs/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+f.Tenants["acme"].Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return polled, resp
}
