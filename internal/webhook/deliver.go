package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Config configures a Deliverer.
type Config struct {
	// Secrets returns a tenant's webhook secret. Required. A tenant
	// without one gets its deliveries archived (not retried): the
	// operator fixes the tenants file, then replays them.
	Secrets func(tenant string) (secret string, ok bool)
	// Guard decides which destination addresses may be dialed.
	Guard Guard
	// Gone, when set, remembers URLs that answered 410 Gone so that later
	// events to them are dropped unsent. When nil a 410 only ends the
	// delivery of that one event.
	Gone *GoneList
	// Timeout bounds one attempt; 0 means DefaultTimeout (15 s).
	Timeout time.Duration
	// Logger gets one line per delivery outcome; nil means slog.Default().
	Logger *slog.Logger
}

// Deliverer is the asynq handler for TaskType.
type Deliverer struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
}

// NewDeliverer checks cfg and returns a Deliverer.
func NewDeliverer(cfg Config) (*Deliverer, error) {
	if cfg.Secrets == nil {
		return nil, errors.New("webhook: Config.Secrets is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Deliverer{cfg: cfg, client: cfg.Guard.Client(cfg.Timeout), log: log}, nil
}

// ProcessTask delivers one event. It returns nil when the receiver
// answered 2xx (or the URL is known gone), an error wrapping
// asynq.SkipRetry when retrying cannot help (410 Gone, a refused or
// malformed destination, no secret, a bad payload), and a *DeliveryError
// otherwise, which RetryDelay turns into the next wait.
//
// Every error it returns and every line it logs names the URL only as
// RedactURL does: asynq stores the error text in Redis, and `inferq
// webhooks failed` prints it.
func (d *Deliverer) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return redactError(d.process(ctx, t))
}

func (d *Deliverer) process(ctx context.Context, t *asynq.Task) error {
	var del Delivery
	if err := json.Unmarshal(t.Payload(), &del); err != nil {
		return fmt.Errorf("webhook: decode delivery: %w: %w", err, asynq.SkipRetry)
	}
	if del.ID == "" {
		return fmt.Errorf("webhook: delivery without id: %w", asynq.SkipRetry)
	}
	u, err := parseURL(del.URL)
	if err != nil {
		return fmt.Errorf("webhook %s: %w: %w", del.ID, err, asynq.SkipRetry)
	}
	log := d.log.With("webhook_id", del.ID, "tenant", del.Tenant, "event", del.Type, "host", u.Host)
	if d.cfg.Gone != nil {
		gone, err := d.cfg.Gone.IsGone(ctx, del.Tenant, del.URL)
		if err != nil {
			return fmt.Errorf("webhook %s: %w", del.ID, err)
		}
		if gone {
			log.Info("webhook dropped: destination answered 410 Gone before")
			return nil
		}
	}
	secret, ok := d.cfg.Secrets(del.Tenant)
	if !ok {
		return fmt.Errorf("webhook %s: no webhook secret for tenant %q: %w", del.ID, del.Tenant, asynq.SkipRetry)
	}

	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, del.URL, bytes.NewReader(del.Body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w: %w", del.ID, redactError(err), asynq.SkipRetry)
	}
	now := time.Now()
	// Set directly: Header.Set would canonicalize to Webhook-Id; the spec
	// spells them lower case and HTTP/1.1 receivers compare any case.
	req.Header["webhook-id"] = []string{del.ID}
	req.Header["webhook-timestamp"] = []string{strconv.FormatInt(now.Unix(), 10)}
	req.Header["webhook-signature"] = []string{Sign(secret, del.ID, now, del.Body)}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "inferq-webhooks/1")

	resp, err := d.client.Do(req)
	if err != nil {
		// A *url.Error prints the whole URL, query and all.
		err = redactError(err)
		if errors.Is(err, ErrForbidden) {
			log.Warn("webhook refused: destination address not allowed", "err", err)
			return fmt.Errorf("webhook %s: %w: %w", del.ID, err, asynq.SkipRetry)
		}
		log.Info("webhook attempt failed", "err", err)
		return &DeliveryError{Host: u.Host, Err: err}
	}
	// Drain a little so the connection can be reused; the body is the
	// receiver's and is not kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()

	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		log.Info("webhook delivered", "status", resp.StatusCode)
		return nil
	case resp.StatusCode == http.StatusGone:
		log.Warn("webhook destination gone; no more deliveries to it")
		if d.cfg.Gone != nil {
			if err := d.cfg.Gone.Mark(ctx, del.Tenant, del.URL); err != nil {
				log.Error("remember gone webhook destination", "err", err)
			}
		}
		return fmt.Errorf("webhook %s to %s: 410 Gone: %w", del.ID, u.Host, asynq.SkipRetry)
	}
	de := &DeliveryError{Host: u.Host, StatusCode: resp.StatusCode}
	if ra, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		de.RetryAfter = ra
	}
	log.Info("webhook attempt failed", "status", resp.StatusCode, "retry_after", de.RetryAfter)
	return de
}

// GoneList remembers, in Redis, webhook URLs that answered 410 Gone, per
// tenant and for good (no expiry; Forget lifts it). URLs compare as exact
// strings.
type GoneList struct {
	rdb redis.UniversalClient
}

// NewGoneList returns a GoneList kept in rdb under keys
// "inferq:webhook:gone:<sha256 of tenant and URL>".
func NewGoneList(rdb redis.UniversalClient) *GoneList { return &GoneList{rdb: rdb} }

func goneKey(tenant, rawURL string) string {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(rawURL))
	return "inferq:webhook:gone:" + hex.EncodeToString(h.Sum(nil))
}

// Mark records that rawURL answered 410 Gone to tenant.
func (g *GoneList) Mark(ctx context.Context, tenant, rawURL string) error {
	if err := g.rdb.Set(ctx, goneKey(tenant, rawURL), time.Now().UTC().Format(time.RFC3339), 0).Err(); err != nil {
		return fmt.Errorf("mark webhook destination gone: %w", err)
	}
	return nil
}

// IsGone reports whether rawURL answered 410 Gone to tenant before. The
// producer may call it at submit to refuse a dead webhook_url early.
func (g *GoneList) IsGone(ctx context.Context, tenant, rawURL string) (bool, error) {
	n, err := g.rdb.Exists(ctx, goneKey(tenant, rawURL)).Result()
	if err != nil {
		return false, fmt.Errorf("check webhook destination gone: %w", err)
	}
	return n > 0, nil
}

// Forget lifts a Mark, e.g. before replaying deliveries to a URL that is
// back.
func (g *GoneList) Forget(ctx context.Context, tenant, rawURL string) error {
	if err := g.rdb.Del(ctx, goneKey(tenant, rawURL)).Err(); err != nil {
		return fmt.Errorf("forget gone webhook destination: %w", err)
	}
	return nil
}

// hostOf is the host of a URL for messages, or "?" when it does not parse.
func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "?"
	}
	return u.Host
}
