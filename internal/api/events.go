package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

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
	// Watch before reading the record, or an event published in between
	// is lost to this stream.
	ch, stop, err := s.watch.watch(t.Name, id)
	if err != nil {
		return err
	}
	defer stop()
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
	send("status", queue.Event{ID: j.ID, Status: j.Status, At: time.Now().UTC().Format(jobs.TimeFormat), Progress: j.Progress})
	keepalive := time.NewTicker(recheck)
	defer keepalive.Stop()
	for !j.Status.Terminal() {
		select {
		case <-r.Context().Done():
			return nil
		case <-keepalive.C:
			// Events are not stored: re-read the record, so that a lost
			// final event does not hold the stream open forever.
			cur, err := s.loadOwned(r.Context(), id, t)
			if err == nil && cur.Status != j.Status {
				send("status", queue.Event{ID: j.ID, Status: cur.Status, At: time.Now().UTC().Format(jobs.TimeFormat)})
				j.Status = cur.Status
				continue
			}
			fmt.Fprint(w, ": keepalive\n\n")
			fl.Flush()
		case ev := <-ch:
			if ev.Progress != nil {
				send("progress", ev)
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
