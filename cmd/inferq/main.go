// Command inferq is the client CLI of an inferq fleet: submit inputs,
// follow jobs, read results, list models, and make API keys.
//
//	inferq keys new --tenant NAME
//	inferq submit --model echo [--wait] FILE...
//	inferq status JOB
//	inferq models
//
// The fleet's address and key come from --url and --key, or INFERQ_URL and
// INFERQ_API_KEY. Output is for people on a terminal, JSON with --json.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/tenants"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "inferq:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  inferq keys new --tenant NAME          make an API key and its tenants-file line
  inferq submit --model M [--wait] FILE...  submit one job per file
  inferq status JOB [--wait 30s]         show a job
  inferq models                          list the fleet's models
common flags: --url (INFERQ_URL), --key (INFERQ_API_KEY), --json`

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	url := fs.String("url", env("INFERQ_URL", "http://127.0.0.1:8080"), "producer URL")
	key := fs.String("key", os.Getenv("INFERQ_API_KEY"), "API key")
	asJSON := fs.Bool("json", false, "print JSON")
	switch cmd {
	case "keys":
		tenant := fs.String("tenant", "", "tenant name")
		if len(args) == 0 || args[0] != "new" {
			return errors.New("usage: inferq keys new --tenant NAME")
		}
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *tenant == "" {
			return errors.New("--tenant is required")
		}
		k, stored := tenants.NewKey()
		if *asJSON {
			return json.NewEncoder(out).Encode(map[string]string{"tenant": *tenant, "api_key": k, "stored": stored})
		}
		fmt.Fprintf(out, "API key for %s (shown once, keep it secret):\n  %s\nAdd to the tenant's api_keys in the tenants file:\n  - %q\n", *tenant, k, stored)
		return nil
	case "submit":
		model := fs.String("model", "", "model name")
		wait := fs.Bool("wait", false, "wait for each job to end")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *model == "" || fs.NArg() == 0 {
			return errors.New("usage: inferq submit --model M [--wait] FILE...")
		}
		c := client.New(*url, *key)
		for _, path := range fs.Args() {
			j, err := submitFile(ctx, c, *model, path)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if *wait {
				if j, err = c.Wait(ctx, j.ID); err != nil {
					return err
				}
			}
			printJob(out, j, *asJSON)
		}
		return nil
	case "status":
		wait := fs.Duration("wait", 0, "hold until the job ends, at most this long")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("usage: inferq status JOB")
		}
		j, err := client.New(*url, *key).Get(ctx, fs.Arg(0), *wait)
		if err != nil {
			return err
		}
		printJob(out, j, *asJSON)
		return nil
	case "models":
		if err := fs.Parse(args); err != nil {
			return err
		}
		ms, err := client.New(*url, *key).Models(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(out).Encode(ms)
		}
		for _, m := range ms {
			fmt.Fprintf(out, "%-12s version %-4s max_batch %d\n", m.Name, m.Version, m.MaxBatch)
		}
		return nil
	}
	return errors.New(usage)
}

func submitFile(ctx context.Context, c *client.Client, model, path string) (*client.Job, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return c.Submit(ctx, client.Submit{
		Model: model, Input: f, FileName: filepath.Base(path),
		ContentType: mime.TypeByExtension(filepath.Ext(path)),
	})
}

func printJob(out io.Writer, j *client.Job, asJSON bool) {
	if asJSON {
		_ = json.NewEncoder(out).Encode(j)
		return
	}
	fmt.Fprintf(out, "%s  %-9s %s", j.ID, j.Status, j.Model)
	if j.FinishedAt != nil && j.CreatedAt != nil {
		fmt.Fprintf(out, "  %s", j.FinishedAt.Sub(*j.CreatedAt).Round(time.Millisecond))
	}
	if j.Result != nil && string(j.Result) != "null" {
		fmt.Fprintf(out, "  %s", j.Result)
	}
	if j.Error != nil {
		fmt.Fprintf(out, "  %s: %s", j.Error.Code, j.Error.Message)
	}
	fmt.Fprintln(out)
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
