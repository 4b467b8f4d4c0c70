// Command demo runs the whole fleet on this machine with nothing prepared
// but `make deps`: it starts NATS, Redis and MinIO on free ports with their
// own data under .demo/, the producer, the scheduler and a worker, submits
// jobs through the HTTP API, waits for them, prints the results and where
// to look, and stops everything on exit or Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
)

func main() {
	keep := flag.Bool("keep", false, "keep the fleet running after the demo, until Ctrl-C")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// demo is the running fleet and what the steps need.
type demo struct {
	fleet *fleettest.Fleet
	back  *fleettest.Backing
	dir   string
	c     *client.Client
}

func run(ctx context.Context, keep bool) error {
	dir := filepath.Join(fleettest.RepoRoot(), ".demo")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return err
	}
	step("building the fleet's commands")
	if err := fleettest.BuildBinaries(filepath.Join(dir, "bin")); err != nil {
		return err
	}
	step("starting NATS (JetStream), Redis and MinIO on free ports, data in " + dir)
	back, err := fleettest.StartBacking(dir, nil, "inferq-demo")
	if err != nil {
		return err
	}
	defer back.MinIO.Stop(5 * time.Second)
	defer back.Stop()
	step("starting producer, scheduler and one CPU worker")
	f, err := fleettest.StartFleet(fleettest.Options{
		Dir: dir, Bin: filepath.Join(dir, "bin"), ModelsDir: fleettest.ModelsDir(), Backing: back, Workers: 1,
	})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the fleet")
		f.Stop()
	}()
	d := &demo{fleet: f, back: back, dir: dir, c: client.New(f.URL, f.Tenants["acme"].Key)}
	d.where()
	for _, s := range steps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := s(ctx, d); err != nil {
			return err
		}
	}
	if keep {
		step("the fleet keeps running; Ctrl-C stops it")
		<-ctx.Done()
	}
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func (d *demo) where() {
	fmt.Printf(`
    API        %s   (tenant acme, premium: Authorization: Bearer %s)
    metrics    %s/metrics   readiness %s/readyz
    NATS       nats://%s     Redis redis://%s     MinIO http://%s (bucket %s)
    logs       %s/*.log
`, d.fleet.URL, d.fleet.Tenants["acme"].Key, d.fleet.URL, d.fleet.URL,
		d.back.NATS.Addr, d.back.Redis.Addr, d.back.MinIO.Addr, d.back.Bucket, d.dir)
}

// steps are the demo's parts, in order; each submits through the API and
// prints what came back.
var steps = []func(context.Context, *demo) error{echoStep}

func echoStep(ctx context.Context, d *demo) error {
	step("echo: three jobs through the whole fleet (upload -> S3 -> JetStream -> scheduler -> worker -> Redis)")
	var ids []string
	for i, text := range []string{"hello, inferq", "queue-driven inference", "exactly once"} {
		j, err := d.c.SubmitBytes(ctx, "echo", []byte(text), "text/plain")
		if err != nil {
			return fmt.Errorf("submit echo %d: %w", i, err)
		}
		fmt.Printf("    submitted %s  deadline %s\n", j.ID, j.Deadline.Format(time.RFC3339Nano))
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		j, err := d.c.Wait(ctx, id)
		if err != nil {
			return err
		}
		printJob(j)
	}
	return nil
}

func printJob(j *client.Job) {
	took := ""
	if j.FinishedAt != nil && j.CreatedAt != nil {
		took = j.FinishedAt.Sub(*j.CreatedAt).Round(time.Millisecond).String()
	}
	met := "?"
	if j.MetDeadline != nil {
		met = map[bool]string{true: "met", false: "missed"}[*j.MetDeadline]
	}
	fmt.Printf("    %s %-9s %-8s %7s deadline %-6s", j.ID, j.Status, j.Model, took, met)
	if j.Error != nil {
		fmt.Printf(" error %s: %s\n", j.Error.Code, j.Error.Message)
		return
	}
	fmt.Printf(" %s\n", j.Result)
}
