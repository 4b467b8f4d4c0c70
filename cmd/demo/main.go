// Command demo runs the whole fleet on this machine with nothing prepared
// but `make deps`: it starts NATS, Redis and MinIO on free ports with their
// own data under .demo/, the producer, the scheduler and a worker, submits
// jobs through the HTTP API, waits for them, prints the results and where
// to look, and stops everything on exit or Ctrl-C.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/models/zoo"
	"github.com/inferq/inferq/internal/ops"
	"github.com/inferq/inferq/internal/pages"
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
var steps = []func(context.Context, *demo) error{echoStep, ocrStep, digitsStep, bulkStep}

// bulkStep submits a directory of pages and digits as one batch with the
// CLI (progress bars for the upload and for completion), with a webhook to
// a receiver here that verifies each signature and prints what arrives.
func bulkStep(ctx context.Context, d *demo) error {
	step("bulk: the CLI submits a directory of 40 digit images as one batch, with a signed webhook")
	dir := filepath.Join(d.dir, "scans")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	samples, _, err := zoo.DigitsHeldOut()
	if err != nil {
		return err
	}
	for i := 0; i < 40; i++ {
		b, err := samples[i].PNG(32, i%2 == 0)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("digit-%02d.png", i)), b, 0o644); err != nil {
			return err
		}
	}
	got := make(chan *client.WebhookEvent, 100)
	secret := d.fleet.Tenants["acme"].WebhookSecret
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := ops.NewHTTPServer(client.WebhookHandler(secret, func(_ context.Context, e *client.WebhookEvent) error {
		got <- e
		return nil
	}), ops.DefaultTimeouts)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	hook := "http://" + ln.Addr().String() + "/hooks/inferq"
	fmt.Printf("    webhook receiver %s (verifies signatures with the tenant's secret)\n", hook)
	fmt.Printf("    $ inferq submit --model digits --wait --webhook %s %s\n", hook, dir)
	cmd := exec.CommandContext(ctx, filepath.Join(d.dir, "bin", "inferq"), "submit", "--model", "digits", "--wait",
		"--progress", "always", "--webhook", hook, dir)
	cmd.Env = append(os.Environ(), "INFERQ_URL="+d.fleet.URL, "INFERQ_API_KEY="+d.fleet.Tenants["acme"].Key)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("inferq submit: %w", err)
	}
	select {
	case e := <-got:
		fmt.Printf("    webhook received: id %s, type %s, signature verified\n", e.ID, e.Type)
		if b, err := e.Batch(); err == nil {
			fmt.Printf("      batch %s: %d jobs, %d met their deadline\n", b.ID, b.Jobs, b.MetDeadline)
		}
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no webhook arrived within 30s")
	}
	return nil
}

func ocrStep(ctx context.Context, d *demo) error {
	step("ocr: a page rendered here (Go Regular, 28 px), read by PP-OCRv4")
	png, err := pages.PNG(pages.Regular, 28, pages.Lines[0])
	if err != nil {
		return err
	}
	page := filepath.Join(d.dir, "page.png")
	if err := os.WriteFile(page, png, 0o644); err != nil {
		return err
	}
	j, err := d.c.Submit(ctx, client.Submit{Model: "ocr", Input: bytes.NewReader(png), FileName: "page.png", ContentType: "image/png"})
	if err != nil {
		return err
	}
	if j, err = d.c.Wait(ctx, j.ID); err != nil {
		return err
	}
	printJob(j)
	var r struct {
		Lines []struct {
			Text  string  `json:"text"`
			Score float64 `json:"score"`
		} `json:"lines"`
	}
	_ = json.Unmarshal(j.Result, &r)
	fmt.Printf("    the page (%s) says:\n", page)
	for i, l := range r.Lines {
		want := ""
		if i < len(pages.Lines[0]) {
			want = pages.Lines[0][i]
		}
		fmt.Printf("      %-40q (score %.2f)   drawn: %q\n", l.Text, l.Score, want)
	}
	return nil
}

func digitsStep(ctx context.Context, d *demo) error {
	step("digits: held-out handwritten digits, drawn 48x48 in both polarities")
	samples, labels, err := zoo.DigitsHeldOut()
	if err != nil {
		return err
	}
	right, n := 0, 0
	for i := 0; i < 6; i++ {
		pic, err := samples[i].PNG(48, i%2 == 0)
		if err != nil {
			return err
		}
		b := bytes.NewReader(pic)
		j, err := d.c.Submit(ctx, client.Submit{Model: "digits", Input: b, FileName: fmt.Sprintf("digit-%d.png", i), ContentType: "image/png"})
		if err != nil {
			return err
		}
		if j, err = d.c.Wait(ctx, j.ID); err != nil {
			return err
		}
		var r struct {
			Label string  `json:"label"`
			Score float64 `json:"score"`
		}
		_ = json.Unmarshal(j.Result, &r)
		n++
		if r.Label == fmt.Sprint(labels[i]) {
			right++
		}
		fmt.Printf("    %s  drawn %d, read %s (score %.2f)\n", j.ID, labels[i], r.Label, r.Score)
	}
	fmt.Printf("    %d of %d right\n", right, n)
	return nil
}

func echoStep(ctx context.Context, d *demo) error {
	step("echo: three jobs through the whole fleet (small inputs ride inline in the queue message: JetStream -> scheduler -> worker -> Redis)")
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
