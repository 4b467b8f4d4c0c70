// Command bench is inferq's benchmark harness (`make bench`): it starts
// its own NATS, Redis and MinIO, runs the scenarios side by side and
// writes docs/benchmarks.md and docs/benchmarks.json.
//
//	go run ./cmd/bench                              # every scenario, full size, into docs/
//	go run ./cmd/bench --scenario overhead,sla      # some; the report goes to a temp dir
//	go run ./cmd/bench --size tiny --out /tmp/b     # seconds, to check the harness
//
// A run of only some scenarios does not overwrite docs/ unless --out says
// so, so that docs/ always holds one whole run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/inferq/inferq/internal/bench"
)

func main() {
	if bench.IsChild() {
		os.Exit(bench.RunChild())
	}
	var scenarios, size, out string
	var list bool
	flag.StringVar(&scenarios, "scenario", "", "comma-separated scenarios to run (default: all): "+strings.Join(bench.ScenarioNames(), ", "))
	flag.StringVar(&size, "size", "full", "full (about 15 minutes on 2 cores) or tiny (seconds, checks the harness)")
	flag.StringVar(&out, "out", "", "directory for benchmarks.md and benchmarks.json (default: docs for a full run of every scenario, else a temp dir)")
	flag.BoolVar(&list, "list", false, "list the scenarios and exit")
	flag.Parse()
	if list {
		for _, s := range bench.Scenarios() {
			fmt.Printf("%-13s %s\n", s.Name, s.Title)
		}
		return
	}
	cfg := bench.Config{Log: os.Stderr, Command: "go run ./cmd/bench " + strings.Join(os.Args[1:], " ")}
	switch size {
	case "full":
		cfg.Size = bench.Full()
	case "tiny":
		cfg.Size = bench.Tiny()
	default:
		fmt.Fprintf(os.Stderr, "bench: --size %q: want full or tiny\n", size)
		os.Exit(2)
	}
	cfg.Command = strings.TrimSpace(cfg.Command)
	if scenarios != "" {
		for _, s := range strings.Split(scenarios, ",") {
			if s = strings.TrimSpace(s); s != "" {
				cfg.Scenarios = append(cfg.Scenarios, s)
			}
		}
	}
	if out == "" {
		out = "docs"
		if len(cfg.Scenarios) > 0 || size != "full" {
			out = filepath.Join(os.TempDir(), "inferq-bench")
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		if werr := rep.Write(out); werr != nil {
			fmt.Fprintln(os.Stderr, "bench: write report:", werr)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s and %s\n", filepath.Join(out, "benchmarks.md"), filepath.Join(out, "benchmarks.json"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
