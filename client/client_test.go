package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inferq/inferq/internal/webhook/signature"
)

func TestDirFiles(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"b.png", "a/1.png", "a/2.png", ".hidden", ".git/config", "a/.DS_Store", "__MACOSX/a/._1.png"} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte(p), 0o644)
	}
	os.Symlink(filepath.Join(dir, "b.png"), filepath.Join(dir, "link.png"))
	files, err := DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != f.Name || f.Size != int64(len(b)) {
			t.Fatalf("%s: content %q, size %d", f.Name, b, f.Size)
		}
	}
	if got := strings.Join(names, ","); got != "a/1.png,a/2.png,b.png" {
		t.Fatalf("DirFiles = %s", got)
	}
}

func TestWebhookHandler(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	var got []*WebhookEvent
	srv := httptest.NewServer(WebhookHandler(secret, func(_ context.Context, e *WebhookEvent) error {
		got = append(got, e)
		return nil
	}))
	defer srv.Close()
	body := []byte(`{"type":"job.succeeded","timestamp":"2026-11-29T12:00:00.000Z","data":{"id":"j1","status":"succeeded"}}`)
	send := func(sig string, ts time.Time) int {
		req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(body))
		req.Header.Set("webhook-id", "msg_1")
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	now := time.Now()
	if st := send(signature.Sign(secret, "msg_1", now, body), now); st != 204 {
		t.Fatalf("signed webhook answered %d", st)
	}
	if st := send(signature.Sign("whsec_b3RoZXI=", "msg_1", now, body), now); st != 401 {
		t.Fatalf("webhook signed with another secret answered %d", st)
	}
	old := now.Add(-10 * time.Minute)
	if st := send(signature.Sign(secret, "msg_1", old, body), old); st != 401 {
		t.Fatalf("stale webhook answered %d", st)
	}
	if len(got) != 1 || got[0].ID != "msg_1" || got[0].Type != EventJobSucceeded {
		t.Fatalf("events: %+v", got)
	}
	j, err := got[0].Job()
	if err != nil || j.ID != "j1" || j.Status != "succeeded" {
		t.Fatalf("job %+v, %v", j, err)
	}
}

func TestResults(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/batches/b_1/results" || r.URL.Query().Get("status") != "failed" || r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, `{"error":{"code":"not_found","message":"no"}}`, 404)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"id":"j1","status":"failed","file_name":"a"}`+"\n"+`{"id":"j2","status":"failed","file_name":"b"}`+"\n")
	}))
	defer srv.Close()
	c := New(srv.URL, "k")
	res, err := c.BatchResults(context.Background(), "b_1", "failed")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for res.Next() {
		ids = append(ids, res.Job().ID+":"+res.Job().FileName)
	}
	res.Close()
	if res.Err() != nil || strings.Join(ids, ",") != "j1:a,j2:b" {
		t.Fatalf("results %v, err %v", ids, res.Err())
	}
	_, err = c.BatchResults(context.Background(), "b_2", "")
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != "not_found" {
		t.Fatalf("missing batch: %v", err)
	}
}
