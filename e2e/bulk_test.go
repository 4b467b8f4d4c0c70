package e2e

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
)

// TestBatchBulk: a batch of 1,000 small files by multipart and another by
// zip: every job ends, the counters add up, the results stream in submit
// order with their file names, and each batch sends one batch.completed.
func TestBatchBulk(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	ctx := ctxT(t, 3*time.Minute)
	rcv := fleettest.NewReceiver(nil)
	t.Cleanup(rcv.Close)
	c := f.client("initech")
	const n = 1000
	content := func(i int) []byte { return []byte(fmt.Sprintf("page %04d of the bulk upload", i)) }

	files := make([]client.File, n)
	for i := range files {
		files[i] = client.File{Name: fmt.Sprintf("scans/page-%04d.txt", i), Reader: bytes.NewReader(content(i))}
	}
	var sent int64
	t0 := time.Now()
	multi, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", Files: files, WebhookURL: rcv.URL + "/multi",
		Metadata: map[string]any{"run": "multipart"}, Progress: func(s int64) { sent = s }})
	if err != nil {
		t.Fatal(err)
	}
	if multi.Jobs != n || len(multi.Refused) != 0 || multi.StatusURL != "/v1/batches/"+multi.ID || sent == 0 {
		t.Fatalf("multipart batch: %+v (progress %d bytes)", multi, sent)
	}

	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for i := 0; i < n; i++ {
		w, err := zw.Create(fmt.Sprintf("docs/%d/doc-%04d.txt", i/100, i))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(content(i))
	}
	zw.Close()
	zipped, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", Archive: &zbuf, ArchiveName: "docs.zip", WebhookURL: rcv.URL + "/zip"})
	if err != nil {
		t.Fatal(err)
	}
	if zipped.Jobs != n {
		t.Fatalf("zip batch: %+v", zipped)
	}
	t.Logf("both batches submitted in %s", time.Since(t0))

	for _, b := range []struct {
		batch *client.Batch
		name  func(int) string
		hook  string
	}{
		{multi, func(i int) string { return fmt.Sprintf("scans/page-%04d.txt", i) }, "/multi"},
		{zipped, func(i int) string { return fmt.Sprintf("docs/%d/doc-%04d.txt", i/100, i) }, "/zip"},
	} {
		done, err := c.WaitBatch(ctx, b.batch.ID, 250*time.Millisecond, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("batch %s done after %s", b.hook, time.Since(t0))
		cn := done.Counts
		if !done.Done || done.Status != "completed" || done.Jobs != n || cn.Succeeded != n ||
			cn.Queued+cn.Running+cn.Succeeded+cn.Failed+cn.Canceled != n || done.MetDeadline != n || done.CompletedAt == nil {
			t.Fatalf("batch %s at its end: %+v", b.batch.ID, done)
		}
		res, err := c.BatchResults(ctx, b.batch.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for res.Next() {
			j := res.Job()
			if i >= n || j.FileName != b.name(i) || j.BatchID != b.batch.ID {
				t.Fatalf("result %d: %s %q in batch %s, want %q", i, j.ID, j.FileName, j.BatchID, b.name(i))
			}
			checkEcho(t, j, content(i))
			i++
		}
		res.Close()
		if res.Err() != nil || i != n {
			t.Fatalf("results: %d lines, err %v", i, res.Err())
		}
	}

	// One batch.completed each, signed, with the final counts.
	secret := f.Tenants["initech"].WebhookSecret
	if err := rcv.WaitFor(ctx, func(got []fleettest.Received) bool { return len(got) >= 2 }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // room for a duplicate to show itself
	got := rcv.Requests()
	if len(got) != 2 {
		t.Fatalf("receiver got %d webhooks, want 2 (one batch.completed per batch)", len(got))
	}
	for _, r := range got {
		e, err := client.VerifyWebhook(secret, r.Header, r.Body)
		if err != nil {
			t.Fatalf("webhook does not verify: %v", err)
		}
		b, _ := e.Batch()
		if e.Type != client.EventBatchCompleted || (b.ID != multi.ID && b.ID != zipped.ID) || !b.Done || b.Counts.Succeeded != n {
			t.Fatalf("webhook %s: %s", e.Type, r.Body)
		}
	}
}

// s3Objects lists the test bucket.
func s3Objects(t *testing.T, f *fleet) []string {
	t.Helper()
	mc, err := minio.New(f.back.MinIO.Addr, &minio.Options{Creds: credentials.NewStaticV4(fleettest.MinIOUser, fleettest.MinIOPassword, "")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for o := range mc.ListObjects(context.Background(), f.back.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	sort.Strings(keys)
	return keys
}

type zipEntry struct {
	name string
	mode os.FileMode
	data []byte
}

func makeZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func makeTarGz(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gw)
	for _, h := range hdrs {
		body := []byte(nil)
		if h.Typeflag == tar.TypeReg {
			body = bytes.Repeat([]byte("x"), int(h.Size))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	gw.Close()
	return buf.Bytes()
}

// TestBatchArchiveAttacks: archives that escape, link, explode or flood
// are refused with their codes, and leave nothing in the bucket; files a
// model cannot take are listed as refused; multipart names are checked
// too.
func TestBatchArchiveAttacks(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	ctx := ctxT(t, 2*time.Minute)
	c := f.client("acme")
	before := s3Objects(t, f)

	many := make([]zipEntry, 100_001)
	for i := range many {
		many[i] = zipEntry{name: fmt.Sprintf("f%06d", i), data: []byte{'x'}}
	}
	good := []byte("a good file that comes first")
	cases := []struct {
		name, file string
		archive    []byte
		status     int
		code       string
	}{
		{"zip slip", "slip.zip", makeZip(t, zipEntry{name: "ok.txt", data: good}, zipEntry{name: "../../../tmp/evil.txt", data: []byte("pwned")}), 422, "archive_unsafe_path"},
		{"absolute path", "abs.zip", makeZip(t, zipEntry{name: "/etc/cron.d/evil", data: []byte("pwned")}), 422, "archive_unsafe_path"},
		{"zip symlink", "link.zip", makeZip(t, zipEntry{name: "ok.txt", data: good}, zipEntry{name: "passwd", mode: os.ModeSymlink | 0o777, data: []byte("/etc/passwd")}), 422, "archive_link"},
		{"tar symlink after good files", "link.tar.gz", makeTarGz(t,
			&tar.Header{Name: "a.txt", Typeflag: tar.TypeReg, Size: 10, Mode: 0o644},
			&tar.Header{Name: "b.txt", Typeflag: tar.TypeReg, Size: 10, Mode: 0o644},
			&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", Mode: 0o777}), 422, "archive_link"},
		{"tar slip", "slip.tar.gz", makeTarGz(t,
			&tar.Header{Name: "a.txt", Typeflag: tar.TypeReg, Size: 10, Mode: 0o644},
			&tar.Header{Name: "../evil.txt", Typeflag: tar.TypeReg, Size: 10, Mode: 0o644}), 422, "archive_unsafe_path"},
		{"zip bomb", "bomb.zip", makeZip(t, zipEntry{name: "zeros.bin", data: make([]byte, 30<<20)}), 413, "archive_bomb"},
		{"too many entries", "many.zip", makeZip(t, many...), 413, "archive_too_many_entries"},
		{"not an archive", "notes.txt", []byte("just some text, long enough to sniff"), 415, "unsupported_archive"},
	}
	for _, tc := range cases {
		_, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", Archive: bytes.NewReader(tc.archive), ArchiveName: tc.file})
		var e *client.Error
		if !errors.As(err, &e) || e.Status != tc.status || e.Code != tc.code {
			t.Errorf("%s: got %v, want %d %s", tc.name, err, tc.status, tc.code)
		}
	}

	// Multipart names: an escaping name and a duplicate are refused.
	for _, tc := range []struct {
		name  string
		files []client.File
		code  string
	}{
		{"dotdot name", []client.File{{Name: "../x.txt", Reader: strings.NewReader("x")}}, "invalid_file_name"},
		{"duplicate", []client.File{{Name: "a.txt", Reader: strings.NewReader("1")}, {Name: "a.txt", Reader: strings.NewReader("2")}}, "duplicate_file_name"},
	} {
		_, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", Files: tc.files})
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 400 || e.Code != tc.code {
			t.Errorf("%s: got %v, want 400 %s", tc.name, err, tc.code)
		}
	}
	// Refused before the files are read: the client still gets the answer.
	_, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "nope", Files: []client.File{{Name: "big.bin", Reader: bytes.NewReader(make([]byte, 40<<20))}}})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != "unknown_model" {
		t.Errorf("batch for an unknown model: %v", err)
	}
	if after := s3Objects(t, f); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("refused batches left objects behind: before %v, after %v", before, after)
	}

	// A file the model cannot take is refused on its own; the rest run.
	var img bytes.Buffer
	png.Encode(&img, image.NewGray(image.Rect(0, 0, 8, 8)))
	b, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "digits", Files: []client.File{
		{Name: "digit.png", Reader: bytes.NewReader(img.Bytes())},
		{Name: "readme.txt", Reader: strings.NewReader("not an image")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Jobs != 1 || len(b.Refused) != 1 || b.Refused[0].FileName != "readme.txt" || b.Refused[0].Code != "unsupported_content_type" {
		t.Fatalf("mixed batch: %+v", b)
	}
	// Accepted inputs lie under the batch's own prefix, nowhere else.
	for _, k := range s3Objects(t, f) {
		if !contains(before, k) && !strings.HasPrefix(k, "inputs/acme/"+b.ID+"/") {
			t.Fatalf("object %s outside the batch's prefix inputs/acme/%s/", k, b.ID)
		}
	}
	if _, err := c.WaitBatch(ctx, b.ID, 200*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}

	// Only a multipart body is a batch.
	if st, code := apiCall(t, "POST", f.URL+"/v1/batches", f.Tenants["acme"].Key, "application/json", `{}`); st != 415 || code != "unsupported_request_type" {
		t.Fatalf("json batch: %d %s", st, code)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rawJSON decodes an HTTP response body.
func rawJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}
