package catalog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/inferq/inferq/internal/fleettest"
)

func TestParseS3(t *testing.T) {
	for in, want := range map[string][3]string{
		"s3://models":            {"models", "", "true"},
		"s3://shared/fleet/a/":   {"shared", "fleet/a", "true"},
		"/var/lib/inferq/models": {"", "", "false"},
	} {
		b, p, ok := ParseS3(in)
		if b != want[0] || p != want[1] || (ok != (want[2] == "true")) {
			t.Errorf("ParseS3(%q) = %q %q %v", in, b, p, ok)
		}
	}
}

// TestS3SourceSync: versions under an S3 prefix are mirrored whole, once;
// a version without its manifest (still uploading) is left for later.
func TestS3SourceSync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO; skipped in -short mode")
	}
	srv, err := fleettest.StartMinIO(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(5 * time.Second)
	c, err := minio.New(srv.Addr, &minio.Options{Creds: credentials.NewStaticV4(fleettest.MinIOUser, fleettest.MinIOPassword, "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "models", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	put := func(key, body string) {
		if _, err := c.PutObject(ctx, "models", key, bytes.NewReader([]byte(body)), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put("fleet/echo/1/manifest.yaml", "name: echo\n")
	put("fleet/echo/1/model.onnx", "graph")
	put("fleet/echo/1/extra/labels.txt", "a\nb\n")
	put("fleet/echo/2/model.onnx", "half-uploaded")
	put("other/ignored/1/manifest.yaml", "x")
	local := t.TempDir()
	src := &S3Source{Client: c, Bucket: "models", Prefix: "fleet"}
	n, err := src.Sync(ctx, local)
	if err != nil || n != 1 {
		t.Fatalf("sync: %d %v, want 1 version", n, err)
	}
	for _, f := range []string{"echo/1/manifest.yaml", "echo/1/model.onnx", "echo/1/extra/labels.txt"} {
		if _, err := os.Stat(filepath.Join(local, f)); err != nil {
			t.Fatalf("%s not mirrored: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(local, "echo/2")); !os.IsNotExist(err) {
		t.Fatalf("a version without its manifest was mirrored: %v", err)
	}
	put("fleet/echo/2/manifest.yaml", "name: echo\n")
	if n, err := src.Sync(ctx, local); err != nil || n != 1 {
		t.Fatalf("second sync: %d %v, want the completed version 2", n, err)
	}
	if n, _ := src.Sync(ctx, local); n != 0 {
		t.Fatalf("third sync fetched %d, want 0", n)
	}
}

func TestPrevious(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"1", "2", "9", "10", "x"} {
		d := filepath.Join(dir, "m", v)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if v != "9" { // a version directory without a manifest is not one
			if err := os.WriteFile(filepath.Join(d, ManifestFile), []byte("name: m\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for v, want := range map[string]string{"10": "2", "2": "1", "1": ""} {
		if got, err := Previous(dir, "m", v); err != nil || got != want {
			t.Errorf("Previous(%s) = %q %v, want %q", v, got, err, want)
		}
	}
}
