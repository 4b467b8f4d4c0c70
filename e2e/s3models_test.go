package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/inferq/inferq/internal/fleettest"
)

// TestModelsFromS3: a fleet whose INFERQ_MODELS_DIR is an S3 prefix
// mirrors the models and serves them.
func TestModelsFromS3(t *testing.T) {
	dir := t.TempDir()
	back, err := fleettest.StartBacking(dir, sharedS3, "s3models")
	if err != nil {
		t.Fatal(err)
	}
	defer back.Stop()
	ctx := ctxT(t, 2*time.Minute)
	c, err := minio.New(sharedS3.Addr, &minio.Options{Creds: credentials.NewStaticV4(fleettest.MinIOUser, fleettest.MinIOPassword, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(ctx, "s3models", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	// Publish the echo model under fleet-models/ as an operator would.
	src := filepath.Join(modelsDir, "echo")
	err = filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || strings.HasPrefix(info.Name(), ".") {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		_, err = c.FPutObject(ctx, "s3models", "fleet-models/echo/"+filepath.ToSlash(rel), path, minio.PutObjectOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	fl, err := fleettest.StartFleet(fleettest.Options{Dir: dir, Bin: binDir, Backing: back, Workers: 1,
		ModelsDir: "s3://s3models/fleet-models",
		Env:       []string{"INFERQ_MODELS_CACHE=" + filepath.Join(dir, "mirror")}})
	if err != nil {
		dumpLogs(t, dir)
		t.Fatal(err)
	}
	defer fl.Stop()
	f := &fleet{Fleet: fl, back: back}
	ms, err := f.client("acme").Models(ctx)
	if err != nil || len(ms) != 1 || ms[0].Name != "echo" {
		t.Fatalf("models from S3: %+v %v", ms, err)
	}
	j, err := f.client("acme").SubmitBytes(ctx, "echo", []byte("from s3"), "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	done, err := f.client("acme").Wait(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, done, []byte("from s3"))
}
