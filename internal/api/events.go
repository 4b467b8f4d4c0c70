package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
	"github.com/inferq/inferq/internal/tenants"
)

// events streams a job's state changes as Server-Sent Events: the current
// state first, then each change, then the final job when it ends.
func (s *Server) events(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return errf(http.StatusInternalServerError, "streaming_unsupported", "this connection cannot stream")
	}
	id := r.PathValue("id")
	ch := make(chan *nats.Msg, 64)
	sub, err := s.cfg.NATS.ChanSubscribe(queue.EventSubject(t.Name, id), ch)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	// The subscription must be live at the server before the record is
	// read, or an event published in between is lost to this waiter.
	if err := s.cfg.NATS.FlushTimeout(2 * time.Second); err != nil {
		return err
	}
	j, err := s.loadOwned(r.Context(), id, t)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		fl.Flush()
	}
	send("status", queue.Event{ID: j.ID, Status: j.Status, At: time.Now().UTC().Format(jobs.TimeFormat)})
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for !j.Status.Terminal() {
		select {
		case <-r.Context().Done():
			return nil
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			fl.Flush()
		case m := <-ch:
			var ev queue.Event
			if json.Unmarshal(m.Data, &ev) != nil {
				continue
			}
			send("status", ev)
			j.Status = ev.Status
		}
	}
	if j, err = s.loadOwned(r.Context(), id, t); err == nil {
		send("job", j)
	}
	return nil
}
