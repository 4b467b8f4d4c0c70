// Package config is the configuration every inferq process shares: a plain
// struct with defaults, filled from an optional YAML file, then INFERQ_*
// environment variables, then flags (each later source wins), and checked.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/redisurl"
	"github.com/inferq/inferq/internal/tenants"
)

// Config holds every setting of the fleet's processes; each process reads
// the fields it needs.
type Config struct {
	NATSURL  string `yaml:"nats_url" env:"INFERQ_NATS_URL" flag:"nats-url" usage:"NATS server URL"`
	RedisURL string `yaml:"redis_url" env:"INFERQ_REDIS_URL" flag:"redis-url" usage:"Redis URL: redis://host:port/db, a Cluster redis://host:port?addr=host2:port&addr=..., or Sentinel redis-sentinel://s1:26379,s2:26379/MASTER/db"`
	// RedisMinReplicas is how many Redis replicas must hold a job's record
	// before the producer answers 202 (jobs.Store.RequireReplicas).
	RedisMinReplicas int    `yaml:"redis_min_replicas" env:"INFERQ_REDIS_MIN_REPLICAS" flag:"redis-min-replicas" usage:"Redis replicas that must hold a new job's record before the 202 (0: the primary alone)"`
	S3Endpoint       string `yaml:"s3_endpoint" env:"INFERQ_S3_ENDPOINT" flag:"s3-endpoint" usage:"S3 endpoint, host:port or http(s)://host:port"`
	S3AccessKey      string `yaml:"s3_access_key" env:"INFERQ_S3_ACCESS_KEY" flag:"s3-access-key" usage:"S3 access key"`
	S3SecretKey      string `yaml:"s3_secret_key" env:"INFERQ_S3_SECRET_KEY" flag:"s3-secret-key" usage:"S3 secret key"`
	S3Bucket         string `yaml:"s3_bucket" env:"INFERQ_S3_BUCKET" flag:"s3-bucket" usage:"S3 bucket for inputs and outputs"`
	S3Region         string `yaml:"s3_region" env:"INFERQ_S3_REGION" flag:"s3-region" usage:"S3 region"`
	ORTLib           string `yaml:"ort_lib" env:"INFERQ_ORT_LIB" flag:"ort-lib" usage:"path of libonnxruntime.so"`
	ModelsDir        string `yaml:"models_dir" env:"INFERQ_MODELS_DIR" flag:"models-dir" usage:"directory of models (<name>/<version>/manifest.yaml), or s3://bucket/prefix"`
	ModelsCache      string `yaml:"models_cache" env:"INFERQ_MODELS_CACHE" flag:"models-cache" usage:"local mirror of an s3:// models dir (default: the user cache dir)"`
	HTTPAddr         string `yaml:"http_addr" env:"INFERQ_HTTP_ADDR" flag:"http-addr" usage:"address for the API (producer) and /healthz, /readyz, /metrics"`
	TenantsFile      string `yaml:"tenants_file" env:"INFERQ_TENANTS_FILE" flag:"tenants-file" usage:"tenants file (tiers, hashed API keys)"`
	// AdminKeys are the operator keys of the web console (/ui/), stored
	// hashed like API keys: comma-separated "sha256:<hex>".
	AdminKeys string `yaml:"admin_keys" env:"INFERQ_ADMIN_KEYS" flag:"admin-keys" usage:"comma-separated sha256:<hex> hashes of the console's operator keys (inferq keys new makes one)"`
	// WebhookAllowNets are CIDRs webhooks may reach although the SSRF guard
	// would refuse them (e.g. 127.0.0.0/8 in tests).
	WebhookAllowNets string `yaml:"webhook_allow_nets" env:"INFERQ_WEBHOOK_ALLOW_NETS" flag:"webhook-allow-nets" usage:"comma-separated CIDRs webhooks may reach despite the SSRF guard"`
	// JSReplicas is the replica count of the streams and buckets the fleet
	// creates (3 on a 3-node NATS cluster).
	JSReplicas int `yaml:"js_replicas" env:"INFERQ_JS_REPLICAS" flag:"js-replicas" usage:"replicas of the JetStream streams and KV buckets (3 on a NATS cluster)"`
	// WebhookRetrySchedule replaces the Standard Webhooks retry schedule
	// (comma-separated durations; for tests and staging).
	WebhookRetrySchedule string `yaml:"webhook_retry_schedule" env:"INFERQ_WEBHOOK_RETRY_SCHEDULE" flag:"webhook-retry-schedule" usage:"comma-separated retry delays replacing the webhook schedule (tests, staging)"`
	LogFormat            string `yaml:"log_format" env:"INFERQ_LOG_FORMAT" flag:"log-format" usage:"text or json (default: text on a terminal, else json)"`
	LogLevel             string `yaml:"log_level" env:"INFERQ_LOG_LEVEL" flag:"log-level" usage:"debug, info, warn or error"`

	// Producer.
	MaxInputBytes int64 `yaml:"max_input_bytes" env:"INFERQ_MAX_INPUT_BYTES" flag:"max-input-bytes" usage:"largest accepted input, bytes"`
	// InlineInputBytes is the largest input that travels inline in its
	// queue message instead of S3 (0: every input goes to S3).
	InlineInputBytes int64 `yaml:"inline_input_bytes" env:"INFERQ_INLINE_INPUT_BYTES" flag:"inline-input-bytes" usage:"largest input carried inline in its queue message instead of S3, bytes (0: always S3)"`
	// MaxInlineResult is the largest result kept in the job record; a
	// larger one goes to S3 under outputs/ and the record points at it.
	MaxInlineResult int64         `yaml:"max_inline_result" env:"INFERQ_MAX_INLINE_RESULT" flag:"max-inline-result" usage:"largest result kept inline in the job record, bytes; larger ones go to S3"`
	ResultTTL       time.Duration `yaml:"result_ttl" env:"INFERQ_RESULT_TTL" flag:"result-ttl" usage:"how long finished jobs and their results are kept"`
	PublishWait     time.Duration `yaml:"publish_wait" env:"INFERQ_PUBLISH_WAIT" flag:"publish-wait" usage:"how long a submit waits for JetStream to store the job before answering 503"`

	// Scheduler.
	Policy    string        `yaml:"policy" env:"INFERQ_POLICY" flag:"policy" usage:"queue order: deadline (tiers' SLAs), fifo, edf or strict"`
	ReapAfter time.Duration `yaml:"reap_after" env:"INFERQ_REAP_AFTER" flag:"reap-after" usage:"a job running this long without finishing is queued again"`

	// Worker.
	Device    string `yaml:"device" env:"INFERQ_DEVICE" flag:"device" usage:"cpu or cuda:N"`
	Models    string `yaml:"models" env:"INFERQ_MODELS" flag:"models" usage:"comma-separated models to serve (default: every model in the models dir)"`
	Threads   int    `yaml:"threads" env:"INFERQ_THREADS" flag:"threads" usage:"ONNX Runtime intra-op threads per session (0: the cores given to the process)"`
	Instances int    `yaml:"instances" env:"INFERQ_INSTANCES" flag:"instances" usage:"sessions per model on the device"`
	// MaxBatch caps every model's batch below its manifest's max_batch
	// (0: the manifests decide); 1 turns batching off.
	MaxBatch int `yaml:"max_batch" env:"INFERQ_MAX_BATCH" flag:"max-batch" usage:"cap on jobs per inference run (0: each manifest's max_batch)"`
	// AckWait is how long a worker may hold a job without a heartbeat
	// before JetStream gives it to another worker.
	AckWait       time.Duration `yaml:"ack_wait" env:"INFERQ_ACK_WAIT" flag:"ack-wait" usage:"how long a job may go without a worker heartbeat before redelivery"`
	MaxDeliver    int           `yaml:"max_deliver" env:"INFERQ_MAX_DELIVER" flag:"max-deliver" usage:"deliveries of one job before it fails with max_attempts"`
	DrainTimeout  time.Duration `yaml:"drain_timeout" env:"INFERQ_DRAIN_TIMEOUT" flag:"drain-timeout" usage:"how long SIGTERM waits for the batch in hand"`
	HoldLimit     time.Duration `yaml:"hold_limit" env:"INFERQ_HOLD_LIMIT" flag:"hold-limit" usage:"how long a worker holds a batch through an S3 or Redis fault before it hands the jobs back to the queue"`
	ModelsRefresh time.Duration `yaml:"models_refresh" env:"INFERQ_MODELS_REFRESH" flag:"models-refresh" usage:"how often a worker looks for new model versions"`
	// RolloutRefresh is how stale a worker's view of a model rollout may
	// be, and how often the scheduler's leader judges rollouts.
	RolloutRefresh time.Duration `yaml:"rollout_refresh" env:"INFERQ_ROLLOUT_REFRESH" flag:"rollout-refresh" usage:"how often workers reread model rollouts and the leader judges them"`
	// RolloutMinJobs is the sample a rollout's versions need before they
	// are judged (0: the policy's default).
	RolloutMinJobs int64 `yaml:"rollout_min_jobs" env:"INFERQ_ROLLOUT_MIN_JOBS" flag:"rollout-min-jobs" usage:"jobs each version of a rollout needs before it is judged"`
	// MaxPages and DocumentDPI bound how a worker reads a PDF or a
	// multi-page TIFF (internal/documents).
	MaxPages    int `yaml:"max_pages" env:"INFERQ_MAX_PAGES" flag:"max-pages" usage:"most pages a document may have (more fails the job with too_many_pages)"`
	DocumentDPI int `yaml:"document_dpi" env:"INFERQ_DOCUMENT_DPI" flag:"document-dpi" usage:"resolution a scanned PDF page is rendered at for OCR"`
}

// Default returns the settings a process has before any source.
func Default() Config {
	return Config{
		NATSURL:         "nats://127.0.0.1:4222",
		RedisURL:        "redis://127.0.0.1:6379/0",
		S3Endpoint:      "127.0.0.1:9000",
		S3Bucket:        "inferq",
		S3Region:        "us-east-1",
		ModelsDir:       "models",
		HTTPAddr:        "127.0.0.1:8080",
		JSReplicas:      1,
		MaxInputBytes:   32 << 20,
		ResultTTL:       7 * 24 * time.Hour,
		MaxInlineResult: 64 << 10,
		// intake.DefaultInlineMax; docs/operations.md says why.
		InlineInputBytes: 16 << 10,
		PublishWait:      5 * time.Second,
		Policy:           "deadline",
		ReapAfter:        15 * time.Minute,
		Device:           "cpu",
		Instances:        1,
		AckWait:          30 * time.Second,
		MaxDeliver:       5,
		DrainTimeout:     30 * time.Second,
		HoldLimit:        5 * time.Minute,
		ModelsRefresh:    10 * time.Second,
		RolloutRefresh:   2 * time.Second,
		MaxPages:         500,
		DocumentDPI:      150,
	}
}

// Load fills a Config for the process called name from, in order, the
// defaults, the YAML file named by -config or INFERQ_CONFIG, the INFERQ_*
// environment and the command-line args.
func Load(name string, args []string) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.String("config", os.Getenv("INFERQ_CONFIG"), "YAML config file (INFERQ_CONFIG)")
	// The file is read before the environment and the flags override it,
	// so -config is found by hand first.
	if path := configPath(args); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := c.bind(fs); err != nil {
		return c, err
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func configPath(args []string) string {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "config" {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv("INFERQ_CONFIG")
}

// bind applies the environment to c and registers one flag per field, each
// defaulting to the value c now holds.
func (c *Config) bind(fs *flag.FlagSet) error {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		env, fl := f.Tag.Get("env"), f.Tag.Get("flag")
		if fl == "" {
			continue
		}
		p := v.Field(i).Addr().Interface()
		raw, set := os.LookupEnv(env)
		usage := f.Tag.Get("usage") + " (" + env + ")"
		switch p := p.(type) {
		case *string:
			if set {
				*p = raw
			}
			fs.StringVar(p, fl, *p, usage)
		case *int:
			if set {
				n, err := strconv.Atoi(raw)
				if err != nil {
					return fmt.Errorf("%s=%q: not an integer", env, raw)
				}
				*p = n
			}
			fs.IntVar(p, fl, *p, usage)
		case *int64:
			if set {
				n, err := strconv.ParseInt(raw, 10, 64)
				if err != nil {
					return fmt.Errorf("%s=%q: not an integer", env, raw)
				}
				*p = n
			}
			fs.Int64Var(p, fl, *p, usage)
		case *time.Duration:
			if set {
				d, err := time.ParseDuration(raw)
				if err != nil {
					return fmt.Errorf("%s=%q: not a duration (like 30s)", env, raw)
				}
				*p = d
			}
			fs.DurationVar(p, fl, *p, usage)
		default:
			return fmt.Errorf("config field %s: unsupported type", f.Name)
		}
	}
	return nil
}

// Validate checks the settings that every process relies on.
func (c Config) Validate() error {
	var errs []error
	if c.NATSURL == "" {
		errs = append(errs, errors.New("INFERQ_NATS_URL is empty"))
	}
	if c.RedisURL == "" {
		errs = append(errs, errors.New("INFERQ_REDIS_URL is empty"))
	}
	if c.S3Endpoint == "" || c.S3Bucket == "" {
		errs = append(errs, errors.New("INFERQ_S3_ENDPOINT and INFERQ_S3_BUCKET are required"))
	}
	if c.MaxInputBytes <= 0 {
		errs = append(errs, errors.New("INFERQ_MAX_INPUT_BYTES must be positive"))
	}
	if c.PublishWait <= 0 || c.PublishWait >= jobs.PublishWithin {
		// A submit must have its messages stored within PublishWithin of
		// its first record, or the orphan sweep may be ending its jobs.
		errs = append(errs, fmt.Errorf("INFERQ_PUBLISH_WAIT must be positive and under %s", jobs.PublishWithin))
	}
	if c.InlineInputBytes < 0 {
		errs = append(errs, errors.New("INFERQ_INLINE_INPUT_BYTES must not be negative"))
	}
	if c.RedisURL != "" {
		if _, err := redisurl.Parse(c.RedisURL); err != nil {
			errs = append(errs, fmt.Errorf("INFERQ_REDIS_URL: %w", err))
		}
	}
	if _, err := tenants.ParseKeySet(c.AdminKeys); err != nil {
		errs = append(errs, fmt.Errorf("INFERQ_ADMIN_KEYS: %w", err))
	}
	if c.RedisMinReplicas < 0 || c.RedisMinReplicas > 16 {
		errs = append(errs, errors.New("INFERQ_REDIS_MIN_REPLICAS must be 0 to 16"))
	}
	if c.MaxPages < 1 || c.MaxPages > 100000 {
		errs = append(errs, errors.New("INFERQ_MAX_PAGES must be 1 to 100000"))
	}
	if c.DocumentDPI < 36 || c.DocumentDPI > 600 {
		errs = append(errs, errors.New("INFERQ_DOCUMENT_DPI must be 36 to 600"))
	}
	if c.JSReplicas < 1 || c.JSReplicas > 5 {
		errs = append(errs, errors.New("INFERQ_JS_REPLICAS must be 1 to 5"))
	}
	if c.Instances < 1 {
		errs = append(errs, errors.New("INFERQ_INSTANCES must be at least 1"))
	}
	if c.MaxDeliver < 2 {
		errs = append(errs, errors.New("INFERQ_MAX_DELIVER must be at least 2"))
	}
	switch c.Policy {
	case "deadline", "fifo", "edf", "strict":
	default:
		errs = append(errs, fmt.Errorf("INFERQ_POLICY %q: want deadline, fifo, edf or strict", c.Policy))
	}
	if c.AckWait < time.Second {
		errs = append(errs, errors.New("INFERQ_ACK_WAIT must be at least 1s"))
	}
	return errors.Join(errs...)
}

// ModelList splits Models into names; empty means every model.
func (c Config) ModelList() []string {
	var out []string
	for _, m := range strings.Split(c.Models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out
}
