package worker

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/jobs"
)

// TestKeptInputServesNextPages: a document's next page is served the
// input its first page fetched, without a GET (its object is gone by then
// and the page still has it); another job's input is not kept.
func TestKeptInputServesNextPages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO; skipped in -short mode")
	}
	minio, err := fleettest.StartMinIO(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { minio.Stop(5 * time.Second) })
	bs, err := blob.Open(blob.Config{Endpoint: minio.Addr, AccessKey: fleettest.MinIOUser, SecretKey: fleettest.MinIOPassword, Bucket: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := bs.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	doc, image := []byte("%PDF- a document of many pages"), []byte("an image")
	for key, data := range map[string][]byte{"inputs/t/doc": doc, "inputs/t/img": image} {
		if _, err := bs.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}
	l := &modelLoop{w: &Worker{cfg: Config{Blob: bs, FetchParallel: 2, MaxInputBytes: 1 << 20}}}
	l.w.kept.idle = time.Minute
	fetch := func(id, key string) *item {
		t.Helper()
		it := &item{job: jobs.Message{ID: id, InputKey: key}}
		if err := l.fetchInputs(ctx, []*item{it}); err != nil {
			t.Fatalf("fetch %s: %v", id, err)
		}
		return it
	}
	if it := fetch(jobs.PageID("doc", 1), "inputs/t/doc"); !bytes.Equal(it.input, doc) {
		t.Fatalf("page 1 input %q", it.input)
	}
	if it := fetch("img", "inputs/t/img"); !bytes.Equal(it.input, image) {
		t.Fatalf("image input %q", it.input)
	}
	for _, key := range []string{"inputs/t/doc", "inputs/t/img"} {
		if err := bs.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if it := fetch(jobs.PageID("doc", 2), "inputs/t/doc"); !bytes.Equal(it.input, doc) {
		t.Fatalf("page 2 input %q, want the document's, kept from page 1", it.input)
	}
	if l.w.kept.get("inputs/t/img") != nil {
		t.Error("an image job's input was kept")
	}
}

// TestKeptInputIdle: a kept input goes once idle for its time, and each
// use starts that time again.
func TestKeptInputIdle(t *testing.T) {
	k := &keptInput{idle: 1500 * time.Millisecond}
	k.keep("a", []byte("x"))
	for range 5 {
		time.Sleep(300 * time.Millisecond)
		if k.get("a") == nil {
			t.Fatal("dropped while in use")
		}
	}
	if k.get("b") != nil {
		t.Error("served under another key")
	}
	deadline := time.Now().Add(10 * time.Second)
	for k.get("a") != nil {
		if time.Now().After(deadline) {
			t.Fatal("still kept long after its idle time")
		}
		time.Sleep(2 * time.Second)
	}
}

// TestKeptInputLimits: at most keptInputs inputs and keptInputBytes in
// all are kept, the least recently used going first, so that documents
// whose pages take turns are all served.
func TestKeptInputLimits(t *testing.T) {
	k := &keptInput{idle: time.Minute}
	keys := []string{"a", "b", "c", "d"}
	for _, key := range keys {
		k.keep(key, []byte(key))
	}
	for range 3 { // pages of four documents taking turns
		for _, key := range keys {
			if string(k.get(key)) != key {
				t.Fatalf("%s not served among %d documents", key, len(keys))
			}
		}
	}
	k.get("a") // a is now the most recent, b the least
	k.keep("e", []byte("e"))
	if k.get("b") != nil || k.get("a") == nil || k.get("e") == nil {
		t.Error("a fifth input did not drop the least recently used")
	}
	big := make([]byte, keptInputBytes/2+1)
	k.keep("big1", big)
	k.keep("big2", big)
	if k.get("big1") != nil || k.get("big2") == nil {
		t.Error("two inputs past the byte limit together were both kept")
	}
	if k.size != int64(len(big)) {
		t.Errorf("size %d, want %d (big2 alone)", k.size, len(big))
	}
	k.keep("huge", make([]byte, keptInputBytes+1))
	if k.get("huge") != nil || k.size != 0 {
		t.Errorf("an input past the byte limit alone was kept (size %d)", k.size)
	}
}
