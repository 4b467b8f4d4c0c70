package api

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/tenants"
)

// Idempotency-Key (docs/api.md): the first request with a key claims it in
// Redis (a pending marker, kept alive while the request runs); once its
// job or batch is durable, the key maps to a fingerprint of the request
// and the 202 it got, for IdempotencyTTL. A later request with the key is
// read (not stored) to fingerprint it: the same fingerprint gets the same
// 202 again, another gets 422 idempotency_key_reused. A request arriving
// while the first is still running gets 409 idempotency_key_in_use. A
// first request that fails releases the key.

const (
	maxIdempotencyKey = 255
	// claimTTL bounds how long a crashed producer's claim blocks a key;
	// a running request renews it.
	claimTTL     = time.Minute
	pendingValue = "pending:"
)

// idemRecord is what a used key maps to.
type idemRecord struct {
	Fingerprint string          `json:"f"`
	Status      int             `json:"s"`
	Body        json.RawMessage `json:"b"`
}

// idempotency is one request's hold on its key.
type idempotency struct {
	rdb    redis.UniversalClient
	key    string
	nonce  string
	ttl    time.Duration
	replay *idemRecord // the key was used: fingerprint this request only
	stop   func()
	once   sync.Once
}

func idemKey(tenant, key string) string {
	h := sha256.Sum256([]byte(key))
	return "idem:" + tenant + ":" + hex.EncodeToString(h[:])
}

// beginIdempotent claims the request's Idempotency-Key, or finds the
// record of its first use. It returns nil without a key.
func (s *Server) beginIdempotent(ctx context.Context, r *http.Request, t *tenants.Tenant) (*idempotency, error) {
	raw := r.Header.Get("Idempotency-Key")
	if raw == "" {
		return nil, nil
	}
	if len(raw) > maxIdempotencyKey || strings.IndexFunc(raw, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
		return nil, errf(http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters")
	}
	rdb := s.cfg.Store.Redis()
	i := &idempotency{rdb: rdb, key: idemKey(t.Name, raw), nonce: pendingValue + jobs.NewID(), ttl: s.cfg.IdempotencyTTL}
	for range 3 {
		ok, err := rdb.SetNX(ctx, i.key, i.nonce, claimTTL).Result()
		if err != nil {
			return nil, fmt.Errorf("claim idempotency key: %w", err)
		}
		if ok {
			i.keepAlive()
			return i, nil
		}
		v, err := rdb.Get(ctx, i.key).Result()
		if errors.Is(err, redis.Nil) {
			continue // expired in between: claim again
		}
		if err != nil {
			return nil, fmt.Errorf("read idempotency key: %w", err)
		}
		if strings.HasPrefix(v, pendingValue) {
			break
		}
		var rec idemRecord
		if err := json.Unmarshal([]byte(v), &rec); err != nil {
			return nil, fmt.Errorf("idempotency record: %w", err)
		}
		i.replay = &rec
		return i, nil
	}
	e := errf(http.StatusConflict, "idempotency_key_in_use", "a request with this Idempotency-Key is still being processed; retry when it has been answered")
	e.RetryAfter = time.Second
	return nil, e
}

// keepAlive renews the claim while the request runs (a large batch can
// take longer than claimTTL to upload).
func (i *idempotency) keepAlive() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(claimTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = i.rdb.Expire(ctx, i.key, claimTTL).Err()
			}
		}
	}()
	i.stop = func() { cancel(); <-done }
}

// answer replays the first request's answer, if fingerprint matches it.
func (i *idempotency) answer(w http.ResponseWriter, fingerprint string) error {
	if i.replay.Fingerprint != fingerprint {
		return errf(http.StatusUnprocessableEntity, "idempotency_key_reused",
			"this Idempotency-Key was used with a different request in the last 24 hours; use a new key for a new request")
	}
	w.Header().Set("Idempotent-Replayed", "true")
	writeRaw(w, i.replay.Status, i.replay.Body)
	return nil
}

// commit records the answer of the first request, which is durable now.
// A failure to record is logged by the caller, not answered: the job
// exists, and a retry with the key would at worst make a second one.
func (i *idempotency) commit(ctx context.Context, fingerprint string, status int, body []byte) error {
	if i == nil || i.replay != nil {
		return nil
	}
	var err error
	i.once.Do(func() {
		i.stop()
		b, _ := json.Marshal(idemRecord{Fingerprint: fingerprint, Status: status, Body: body})
		err = i.rdb.Set(context.WithoutCancel(ctx), i.key, b, i.ttl).Err()
	})
	return err
}

// release gives the key back after a failed first request.
func (i *idempotency) release(ctx context.Context) {
	if i == nil || i.replay != nil {
		return
	}
	i.once.Do(func() {
		i.stop()
		_ = releaseClaim.Run(context.WithoutCancel(ctx), i.rdb, []string{i.key}, i.nonce).Err()
	})
}

var releaseClaim = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// fingerprint sums what makes two submits the same request: the endpoint,
// the parsed fields (in a fixed order, whatever order they came in) and
// the inputs in order, each with its name, declared type and bytes.
type fingerprint struct {
	files hash.Hash
	n     int64
}

func newFingerprint() *fingerprint { return &fingerprint{files: sha256.New()} }

// file starts one input's record and returns where its bytes go; end
// closes it with the count.
func (f *fingerprint) file(name, contentType string) io.Writer {
	f.record(name)
	f.record(contentType)
	f.n = 0
	return f
}

func (f *fingerprint) Write(p []byte) (int, error) {
	f.n += int64(len(p))
	return f.files.Write(p)
}

func (f *fingerprint) end() {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(f.n))
	f.files.Write(b[:])
}

func (f *fingerprint) record(s string) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(len(s)))
	f.files.Write(b[:])
	f.files.Write([]byte(s))
}

// sum closes the fingerprint over the endpoint and the fields.
func (f *fingerprint) sum(endpoint string, sub *submission) string {
	h := sha256.New()
	for _, v := range []string{
		endpoint, sub.model, fmtDeadline(sub.deadline), strconv.FormatInt(sub.deadlineMS, 10),
		sub.webhookURL, string(sub.metadata), strconv.FormatBool(sub.jobWebhooks), sub.uploadID,
	} {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(len(v)))
		h.Write(b[:])
		h.Write([]byte(v))
	}
	h.Write(f.files.Sum(nil))
	return hex.EncodeToString(h.Sum(nil))
}

func fmtDeadline(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// admit starts a submit: it claims the request's Idempotency-Key, if any,
// and holds a new request (not a replay) to the tenant's queue quota. The
// caller releases the claim when the request ends.
func (s *Server) admit(ctx context.Context, r *http.Request, t *tenants.Tenant) (*idempotency, error) {
	idem, err := s.beginIdempotent(ctx, r, t)
	if err != nil {
		return nil, err
	}
	if idem == nil || idem.replay == nil {
		if err := s.checkQueue(ctx, t, 0); err != nil {
			idem.release(ctx)
			return nil, err
		}
	}
	return idem, nil
}
