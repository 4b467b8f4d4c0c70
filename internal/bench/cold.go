package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
)

// coldStart is the first job on a fresh fleet and the ones after it, ms
// from submit to succeeded.
type coldStart struct {
	ready time.Duration // from starting the processes to every /readyz
	cold  float64
	warm  []float64
}

// coldFleet starts a fresh fleet the way a new user does: its own NATS
// and Redis, then producer, scheduler and worker all at once (the
// harness's other fleets start each only once the one before is ready),
// with no model list, so the worker serves every model. Once every process
// answers /readyz (only the producer's, when producerOnly) it times the
// first echo job, then e.size.WarmJobs more, one at a time, and stops the
// fleet.
func (e *env) coldFleet(ctx context.Context, in inputSet, producerOnly bool) (coldStart, error) {
	var cs coldStart
	if err := e.fleetParts(); err != nil {
		return cs, err
	}
	dir, err := e.subdir("cold")
	if err != nil {
		return cs, err
	}
	bucket := fmt.Sprintf("bench-cold-%d", time.Now().UnixNano()%1e9)
	back, err := fleettest.StartBacking(dir, e.minio, bucket)
	if err != nil {
		return cs, err
	}
	defer back.Stop()
	f := &fleet{e: e, back: back, dir: dir, keys: map[string]string{}}
	tf, err := f.writeTenants(nil)
	if err != nil {
		return cs, err
	}
	base := append(back.Env(),
		"INFERQ_ORT_LIB="+e.lib, "INFERQ_MODELS_DIR="+e.models, "INFERQ_TENANTS_FILE="+tf,
		"INFERQ_LOG_FORMAT=json", "INFERQ_LOG_LEVEL=info",
	)
	var procs []*fleettest.Proc
	defer func() {
		// The worker first, as a fleet drains.
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop(10 * time.Second)
		}
	}()
	start := time.Now()
	for _, name := range []string{"producer", "scheduler", "worker"} {
		port, err := fleettest.FreePort()
		if err != nil {
			return cs, err
		}
		env := append(append([]string(nil), base...), "INFERQ_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port))
		p, err := fleettest.StartProc(name, filepath.Join(e.bin, name), nil, env, filepath.Join(dir, name+".log"))
		if err != nil {
			return cs, err
		}
		p.URL = "http://127.0.0.1:" + strconv.Itoa(port)
		procs = append(procs, p)
	}
	deadline := start.Add(90 * time.Second)
	waitFor := procs
	if producerOnly {
		waitFor = procs[:1]
	}
	for _, p := range waitFor {
		for !fleettest.Ready(ctx, p.URL) {
			if p.Exited() {
				return cs, fmt.Errorf("%s exited before it was ready (log %s)", p.Name, p.Log)
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return cs, fmt.Errorf("%s/readyz not ready after %s (log %s)", p.URL, time.Since(start).Round(time.Second), p.Log)
			}
			sleepCtx(ctx, 10*time.Millisecond)
		}
	}
	cs.ready = time.Since(start)

	data, err := os.ReadFile(in.paths[0])
	if err != nil {
		return cs, err
	}
	// A new client, with connections of its own.
	c := client.New(procs[0].URL, f.keys["standard"])
	c.HTTP = &http.Client{Transport: &http.Transport{}}
	defer c.HTTP.CloseIdleConnections()
	one := func() (float64, error) {
		t0 := time.Now()
		j, err := c.Submit(ctx, client.Submit{Model: "echo", Input: bytes.NewReader(data), FileName: "input.bin", ContentType: in.contentType})
		if err != nil {
			return 0, err
		}
		if j, err = c.Wait(ctx, j.ID); err != nil {
			return 0, err
		}
		if j.Status != "succeeded" {
			return 0, fmt.Errorf("job %s ended %s", j.ID, j.Status)
		}
		return float64(time.Since(t0)) / 1e6, nil
	}
	if cs.cold, err = one(); err != nil {
		return cs, fmt.Errorf("first job: %w", err)
	}
	for range e.size.WarmJobs {
		ms, err := one()
		if err != nil {
			return cs, err
		}
		cs.warm = append(cs.warm, ms)
	}
	return cs, nil
}

func coldTable(cs []coldStart) string {
	var b strings.Builder
	b.WriteString("| fleet | every /readyz after s | first job ms | the next ones, ms | median of the next | first minus median |\n|---|---:|---:|---|---:|---:|\n")
	for i, c := range cs {
		m := median(c.warm)
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", i+1, fmtVal(c.ready.Seconds()), fmtVal(c.cold), fmtList(c.warm), fmtVal(m), fmtVal(c.cold-m))
	}
	b.WriteString("\nEach a fresh fleet (NATS, Redis, producer, scheduler, worker serving every model; the shared MinIO), its three processes started at once; the first job is submitted once all of them answer `/readyz`, from a new client.")
	return b.String()
}

func fmtList(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmtVal(x))
	}
	return strings.Join(parts, ", ")
}
