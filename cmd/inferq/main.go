// Command inferq is the client CLI of an inferq fleet: submit inputs (one
// job, or a directory or archive as one batch, with progress bars),
// follow jobs and batches, stream a batch's results, cancel, list models,
// make API keys, and list and replay webhooks that could not be
// delivered.
//
//	inferq submit --model ocr [--wait] ./scans/      a directory: one batch
//	inferq submit --model ocr page.png                one file: one job
//	inferq submit --model ocr scans.zip               an archive: one batch
//	inferq status JOB|BATCH [--wait 30s]
//	inferq results BATCH > out.ndjson
//	inferq cancel JOB|BATCH
//	inferq models
//	inferq keys new --tenant NAME
//	inferq webhooks failed                            (needs Redis)
//	inferq webhooks replay WEBHOOK_ID... | --all
//
// The fleet's address and key come from --url and --key, or INFERQ_URL and
// INFERQ_API_KEY; the webhooks commands read the fleet's Redis from
// --redis-url or INFERQ_REDIS_URL. Output is for people on a terminal,
// JSON with --json. Progress bars go to stderr, on a terminal only unless
// --progress=always.
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
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/archive"
	"github.com/inferq/inferq/internal/redisurl"
	"github.com/inferq/inferq/internal/tenants"
	"github.com/inferq/inferq/internal/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "inferq:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  inferq submit --model M [--wait] PATH...   a file: one job; a directory, several files
                                             or an archive (.zip, .tar.gz, .tar): one batch
      [--webhook URL] [--job-webhooks] [--metadata JSON] [--deadline-ms N]
      [--idempotency-key K] [--progress auto|always|never] [--force-ocr]
  inferq status JOB|BATCH [--wait 30s]       show a job or a batch
  inferq results BATCH [--status S]          the batch's jobs as NDJSON, in submit order
  inferq cancel JOB|BATCH                    cancel a job, or a batch's jobs, not yet ended
  inferq models                              list the fleet's models
  inferq models rollout MODEL VERSION --canary 10% --for 30m [--shadow 5%] [--from V]
  inferq models promote|abort MODEL          end a model's running rollout by hand
  inferq keys new --tenant NAME              make an API key and its tenants-file line
  inferq webhooks failed                     webhooks that exhausted their retries
  inferq webhooks replay ID... | --all       send them once more
common flags: --url (INFERQ_URL), --key (INFERQ_API_KEY), --json;
webhooks and rollouts: --redis-url (INFERQ_REDIS_URL)`

// cli is one invocation's settings and outputs.
type cli struct {
	url, key string
	asJSON   bool
	out, err io.Writer
}

func (c *cli) client() *client.Client { return client.New(c.url, c.key) }

func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(errOut)
	c := &cli{out: out, err: errOut}
	fs.StringVar(&c.url, "url", env("INFERQ_URL", "http://127.0.0.1:8080"), "producer URL (INFERQ_URL)")
	fs.StringVar(&c.key, "key", os.Getenv("INFERQ_API_KEY"), "API key (INFERQ_API_KEY)")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON")
	switch cmd {
	case "keys":
		return c.keys(fs, args)
	case "submit":
		return c.submit(ctx, fs, args)
	case "status":
		return c.status(ctx, fs, args)
	case "results":
		return c.results(ctx, fs, args)
	case "cancel":
		return c.cancel(ctx, fs, args)
	case "models":
		return c.models(ctx, fs, args)
	case "webhooks":
		return c.webhooks(ctx, fs, args)
	case "help", "-h", "--help":
		fmt.Fprintln(out, usage)
		return nil
	}
	return errors.New(usage)
}

// parse parses flags wherever they stand among the arguments, so that
// "inferq status ID --wait 5s" works as well as "inferq status --wait 5s ID".
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (c *cli) keys(fs *flag.FlagSet, args []string) error {
	tenant := fs.String("tenant", "", "tenant name")
	if len(args) == 0 || args[0] != "new" {
		return errors.New("usage: inferq keys new --tenant NAME")
	}
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *tenant == "" {
		return errors.New("--tenant is required")
	}
	k, stored := tenants.NewKey()
	if c.asJSON {
		return json.NewEncoder(c.out).Encode(map[string]string{"tenant": *tenant, "api_key": k, "stored": stored})
	}
	fmt.Fprintf(c.out, "API key for %s (shown once, keep it secret):\n  %s\nAdd to the tenant's api_keys in the tenants file:\n  - %q\n", *tenant, k, stored)
	return nil
}

func (c *cli) submit(ctx context.Context, fs *flag.FlagSet, args []string) error {
	model := fs.String("model", "", "model name")
	wait := fs.Bool("wait", false, "wait for the job or batch to end")
	hook := fs.String("webhook", "", "webhook URL")
	jobHooks := fs.Bool("job-webhooks", false, "a batch's jobs send their own webhooks too")
	meta := fs.String("metadata", "", "metadata, a JSON object")
	deadline := fs.Int64("deadline-ms", 0, "deadline from now, ms (later than the tier's)")
	idem := fs.String("idempotency-key", "", "Idempotency-Key: a retry with the same key returns the first answer")
	progress := fs.String("progress", "auto", "progress bars on stderr: auto (on a terminal), always, never")
	forceOCR := fs.Bool("force-ocr", false, "read every page of a PDF through OCR, text layer or not")
	paths, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *model == "" || len(paths) == 0 {
		return errors.New("usage: inferq submit --model M [--wait] PATH...")
	}
	var metadata map[string]any
	if *meta != "" {
		if err := json.Unmarshal([]byte(*meta), &metadata); err != nil {
			return fmt.Errorf("--metadata: %w", err)
		}
	}
	bars := *progress == "always" || (*progress == "auto" && isTerminal(c.err))
	cl := c.client()
	if len(paths) == 1 {
		fi, err := os.Stat(paths[0])
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() && archive.KindFromName(paths[0]) == "" {
			ct := mime.TypeByExtension(filepath.Ext(paths[0]))
			if *forceOCR && ct == "application/pdf" {
				ct += "; ocr=force"
			}
			return c.submitOne(ctx, cl, client.Submit{Model: *model, FileName: filepath.Base(paths[0]),
				ContentType: ct, DeadlineMS: *deadline,
				WebhookURL: *hook, Metadata: metadata, IdempotencyKey: *idem}, paths[0], *wait, bars)
		}
	}
	bs := client.BatchSubmit{Model: *model, DeadlineMS: *deadline, WebhookURL: *hook, JobWebhooks: *jobHooks,
		Metadata: metadata, IdempotencyKey: *idem}
	var total int64
	if len(paths) == 1 && archive.KindFromName(paths[0]) != "" {
		f, err := os.Open(paths[0])
		if err != nil {
			return err
		}
		defer f.Close()
		fi, _ := f.Stat()
		total = fi.Size()
		bs.Archive, bs.ArchiveName = f, filepath.Base(paths[0])
	} else {
		if bs.Files, err = collect(paths); err != nil {
			return err
		}
		if len(bs.Files) == 0 {
			return errors.New("no files to submit")
		}
		for _, f := range bs.Files {
			total += f.Size
		}
	}
	var bar *progressbar.ProgressBar
	if bars {
		bar = newBar(c.err, total, "upload", true)
		bs.Progress = func(sent int64) { _ = bar.Set64(sent) }
	}
	b, err := cl.SubmitBatch(ctx, bs)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return err
	}
	if !c.asJSON {
		fmt.Fprintf(c.out, "batch %s accepted: %d jobs (model %s, tier %s)\n", b.ID, b.Jobs, b.Model, b.Tier)
		for _, r := range b.Refused {
			fmt.Fprintf(c.out, "  refused %s: %s: %s\n", r.FileName, r.Code, r.Message)
		}
	}
	if !*wait {
		if c.asJSON {
			return json.NewEncoder(c.out).Encode(b)
		}
		fmt.Fprintf(c.out, "follow it: inferq status %s; results: inferq results %s > results.ndjson\n", b.ID, b.ID)
		return nil
	}
	if bars {
		bar = newBar(c.err, b.Jobs, "jobs", false)
	}
	done, err := cl.WaitBatch(ctx, b.ID, 500*time.Millisecond, func(cur *client.Batch) {
		if bar != nil {
			_ = bar.Set64(cur.Counts.Ended())
		}
	})
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return err
	}
	done.Refused = b.Refused
	return c.printBatch(done)
}

// collect turns paths (files and directories) into a batch's files. A
// directory's files are named by their path inside it; files given on
// their own, by their base name.
func collect(paths []string) ([]client.File, error) {
	var out []client.File
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if fi.IsDir() {
			fs, err := client.DirFiles(p)
			if err != nil {
				return nil, err
			}
			out = append(out, fs...)
			continue
		}
		path := p
		out = append(out, client.File{Name: filepath.Base(p), Size: fi.Size(),
			Open: func() (io.ReadCloser, error) { return os.Open(path) }})
	}
	return out, nil
}

func (c *cli) submitOne(ctx context.Context, cl *client.Client, s client.Submit, path string, wait, bars bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	s.Input = f
	j, err := cl.Submit(ctx, s)
	if err != nil {
		return err
	}
	if wait {
		if bars {
			j, err = c.waitPages(ctx, cl, j.ID)
		} else {
			j, err = cl.Wait(ctx, j.ID)
		}
		if err != nil {
			return err
		}
		if done, err := c.printDocument(ctx, cl, j); done || err != nil {
			return err
		}
	}
	c.printJob(j)
	return nil
}

func newBar(w io.Writer, total int64, what string, bytes bool) *progressbar.ProgressBar {
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		progressbar.OptionSetRenderBlankState(true),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionSetItsString("jobs"), progressbar.OptionShowIts())
	}
	return progressbar.NewOptions64(total, opts...)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// isBatchID tells a batch id ("b_...") from a job id.
func isBatchID(id string) bool { return strings.HasPrefix(id, "b_") }

func (c *cli) status(ctx context.Context, fs *flag.FlagSet, args []string) error {
	wait := fs.Duration("wait", 0, "hold until it ends, at most this long")
	ids, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return errors.New("usage: inferq status JOB|BATCH [--wait 30s]")
	}
	cl := c.client()
	if isBatchID(ids[0]) {
		var b *client.Batch
		if *wait > 0 {
			wctx, cancel := context.WithTimeout(ctx, *wait)
			defer cancel()
			b, err = cl.WaitBatch(wctx, ids[0], 500*time.Millisecond, nil)
			if errors.Is(err, context.DeadlineExceeded) && b != nil {
				err = nil
			}
		} else {
			b, err = cl.GetBatch(ctx, ids[0])
		}
		if err != nil {
			return err
		}
		return c.printBatch(b)
	}
	j, err := cl.Get(ctx, ids[0], *wait)
	if err != nil {
		return err
	}
	c.printJob(j)
	return nil
}

func (c *cli) results(ctx context.Context, fs *flag.FlagSet, args []string) error {
	status := fs.String("status", "", "only jobs in this state")
	ids, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return errors.New("usage: inferq results BATCH [--status S] > out.ndjson")
	}
	res, err := c.client().BatchResults(ctx, ids[0], *status)
	if err != nil {
		return err
	}
	defer res.Close()
	n := 0
	for res.Next() {
		if _, err := c.out.Write(append(res.Raw(), '\n')); err != nil {
			return err
		}
		n++
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("after %d results: %w", n, err)
	}
	return nil
}

func (c *cli) cancel(ctx context.Context, fs *flag.FlagSet, args []string) error {
	ids, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return errors.New("usage: inferq cancel JOB|BATCH")
	}
	if isBatchID(ids[0]) {
		b, err := c.client().CancelBatch(ctx, ids[0])
		if err != nil {
			return err
		}
		return c.printBatch(b)
	}
	j, err := c.client().Cancel(ctx, ids[0])
	if err != nil {
		return err
	}
	c.printJob(j)
	return nil
}

func (c *cli) models(ctx context.Context, fs *flag.FlagSet, args []string) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return c.rollout(ctx, fs, args)
	}
	if _, err := parse(fs, args); err != nil {
		return err
	}
	ms, err := c.client().Models(ctx)
	if err != nil {
		return err
	}
	if c.asJSON {
		return json.NewEncoder(c.out).Encode(ms)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tVERSION\tMAX BATCH\tROLLOUT")
	for _, m := range ms {
		ro := ""
		if r := m.Rollout; r != nil {
			ro = fmt.Sprintf("%s -> %s %s (canary %.0f%%)", r.From, r.To, r.Status, 100*r.Canary)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", m.Name, m.Version, m.MaxBatch, ro)
	}
	return tw.Flush()
}

// failedHook is one line of `inferq webhooks failed --json`. The URL is
// left out: its path or query may hold the receiver's token.
type failedHook struct {
	WebhookID    string    `json:"webhook_id"`
	Type         string    `json:"type"`
	Tenant       string    `json:"tenant"`
	Host         string    `json:"host"`
	Retried      int       `json:"retried"`
	LastError    string    `json:"last_error"`
	LastFailedAt time.Time `json:"last_failed_at"`
}

func (c *cli) webhooks(ctx context.Context, fs *flag.FlagSet, args []string) error {
	redisURL := fs.String("redis-url", os.Getenv("INFERQ_REDIS_URL"), "the fleet's Redis (INFERQ_REDIS_URL)")
	all := fs.Bool("all", false, "replay every failed webhook")
	if len(args) == 0 || (args[0] != "failed" && args[0] != "replay") {
		return errors.New("usage: inferq webhooks failed | inferq webhooks replay WEBHOOK_ID... | --all")
	}
	sub := args[0]
	ids, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	rdb, err := fleetRedis(*redisURL, "webhooks")
	if err != nil {
		return err
	}
	defer rdb.Close()
	in := asynq.NewInspectorFromRedisClient(rdb)
	if sub == "failed" {
		fails, err := webhook.ListFailed(ctx, in, asynq.PageSize(1000))
		if err != nil {
			return err
		}
		list := make([]failedHook, 0, len(fails))
		for _, f := range fails {
			list = append(list, failedHook{WebhookID: f.TaskID, Type: f.Delivery.Type, Tenant: f.Delivery.Tenant,
				Host: f.Host, Retried: f.Retried, LastError: f.LastErr, LastFailedAt: f.LastFailedAt})
		}
		if c.asJSON {
			return json.NewEncoder(c.out).Encode(list)
		}
		if len(list) == 0 {
			fmt.Fprintln(c.out, "no failed webhooks")
			return nil
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WEBHOOK ID\tEVENT\tTENANT\tHOST\tATTEMPTS\tLAST FAILED\tLAST ERROR")
		for _, f := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", f.WebhookID, f.Type, f.Tenant, f.Host, f.Retried+1,
				f.LastFailedAt.Local().Format(time.DateTime), f.LastError)
		}
		return tw.Flush()
	}
	var n int
	switch {
	case *all:
		if n, err = webhook.ReplayAll(ctx, in); err != nil {
			return err
		}
	case len(ids) > 0:
		for _, id := range ids {
			if err := webhook.Replay(ctx, in, id); err != nil {
				return err
			}
			n++
		}
	default:
		return errors.New("usage: inferq webhooks replay WEBHOOK_ID... | --all")
	}
	if c.asJSON {
		return json.NewEncoder(c.out).Encode(map[string]int{"replayed": n})
	}
	fmt.Fprintf(c.out, "replayed %d webhook(s): each gets one more attempt now\n", n)
	return nil
}

func (c *cli) printJob(j *client.Job) {
	if c.asJSON {
		_ = json.NewEncoder(c.out).Encode(j)
		return
	}
	fmt.Fprintf(c.out, "%s  %-9s %s", j.ID, j.Status, j.Model)
	if j.FileName != "" {
		fmt.Fprintf(c.out, "  %s", j.FileName)
	}
	if j.FinishedAt != nil && j.CreatedAt != nil {
		fmt.Fprintf(c.out, "  %s", j.FinishedAt.Sub(*j.CreatedAt).Round(time.Millisecond))
	}
	if j.Result != nil && string(j.Result) != "null" {
		fmt.Fprintf(c.out, "  %s", j.Result)
	}
	if j.Error != nil {
		fmt.Fprintf(c.out, "  %s: %s", j.Error.Code, j.Error.Message)
	}
	fmt.Fprintln(c.out)
}

func (c *cli) printBatch(b *client.Batch) error {
	if c.asJSON {
		return json.NewEncoder(c.out).Encode(b)
	}
	cn := b.Counts
	fmt.Fprintf(c.out, "batch %s  %s  %s  %d jobs: %d queued, %d running, %d succeeded, %d failed, %d canceled",
		b.ID, b.Status, b.Model, b.Jobs, cn.Queued, cn.Running, cn.Succeeded, cn.Failed, cn.Canceled)
	if cn.Expired > 0 {
		fmt.Fprintf(c.out, ", %d expired", cn.Expired)
	}
	fmt.Fprintf(c.out, "; %d met their deadline\n", b.MetDeadline)
	if b.Done {
		fmt.Fprintf(c.out, "results: inferq results %s > results.ndjson\n", b.ID)
	}
	return nil
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// fleetRedis opens the fleet's Redis for the operator's commands (what
// names them), which act on the fleet's state rather than through the API.
func fleetRedis(url, what string) (redis.UniversalClient, error) {
	if url == "" {
		return nil, fmt.Errorf("the %s commands need the fleet's Redis: --redis-url or INFERQ_REDIS_URL", what)
	}
	rdb, _, err := redisurl.Open(url)
	if err != nil {
		return nil, fmt.Errorf("--redis-url: %w", err)
	}
	return rdb, nil
}
