// Package e2e tests the whole fleet as its users meet it: the real
// producer, scheduler and worker binaries, against real NATS, Redis and
// MinIO started on free loopback ports, through the HTTP API.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/models/zoo"
)

var (
	binDir    string
	sharedS3  *fleettest.Server
	modelsDir string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: -short: skipping the fleet tests (they start NATS, Redis, MinIO and the services)")
		os.Exit(m.Run())
	}
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	dir, err := os.MkdirTemp("", "inferq-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = filepath.Join(dir, "bin")
	if err := fleettest.BuildBinaries(binDir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	modelsDir = filepath.Join(dir, "models")
	// The slow model runs about half a second a job on this kind of machine.
	if err := buildModels(modelsDir, 400, "echo", "digits", "resnet18"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: models:", err)
		return 1
	}
	if err := zoo.BuildOCR(modelsDir, filepath.Join(fleettest.CacheDir(), "ocr")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: ocr model:", err, "(run `make deps`)")
		return 1
	}
	if sharedS3, err = fleettest.StartMinIO(filepath.Join(dir, "s3")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err, "(run `make deps`)")
		return 1
	}
	defer sharedS3.Stop(5 * time.Second)
	return m.Run()
}

// fleet is one test's own fleet, on its own NATS and Redis.
type fleet struct {
	*fleettest.Fleet
	back *fleettest.Backing
}

var bucketSeq int

func startFleet(t *testing.T, opts fleettest.Options) *fleet {
	t.Helper()
	return startFleetNATS(t, opts, 1)
}

// startFleetNATS is startFleet on natsNodes NATS servers (a cluster when
// more than one).
func startFleetNATS(t *testing.T, opts fleettest.Options, natsNodes int) *fleet {
	t.Helper()
	return startFleetOn(t, opts, func(dir, bucket string) (*fleettest.Backing, error) {
		return fleettest.StartBackingNATS(dir, sharedS3, bucket, natsNodes)
	})
}

// startFleetOn is startFleet on the backing servers that start makes.
func startFleetOn(t *testing.T, opts fleettest.Options, start func(dir, bucket string) (*fleettest.Backing, error)) *fleet {
	t.Helper()
	if testing.Short() {
		t.Skip("fleet test: skipped in -short mode")
	}
	dir := t.TempDir()
	bucketSeq++
	bucket := fmt.Sprintf("e2e-%d-%s", bucketSeq, strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	if len(bucket) > 63 {
		bucket = bucket[:63]
	}
	back, err := start(dir, strings.TrimRight(bucket, "-"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Dir, opts.Bin, opts.Backing = dir, binDir, back
	if opts.ModelsDir == "" {
		opts.ModelsDir = modelsDir
	}
	if opts.Workers == 0 {
		opts.Workers = 1
	}
	f, err := fleettest.StartFleet(opts)
	if err != nil {
		back.Stop()
		dumpLogs(t, dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Stop()
		back.Stop()
		if t.Failed() {
			dumpLogs(t, dir)
		}
	})
	return &fleet{Fleet: f, back: back}
}

func dumpLogs(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		t.Logf("--- %s (tail)\n%s", filepath.Base(l), b)
	}
}

func (f *fleet) client(tenant string) *client.Client {
	return client.New(f.URL, f.Tenants[tenant].Key)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
