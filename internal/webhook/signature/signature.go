package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks header names. net/http canonicalizes them on the
// wire side; receivers may look them up in any case.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a Standard Webhooks secret whose remainder is base64.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock, either way, when Verify is given no tolerance. It is
// the Standard Webhooks default.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify. Receivers usually answer any of them with 400
// or 401; they are distinct so a receiver can log why.
var (
	ErrMissingHeaders   = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrInvalidTimestamp = errors.New("webhook: invalid webhook-timestamp")
	ErrTimestampTooOld  = errors.New("webhook: timestamp too old")
	ErrTimestampTooNew  = errors.New("webhook: timestamp too far in the future")
	ErrNoMatch          = errors.New("webhook: no matching signature")
)

// Key returns the HMAC key bytes for a secret: the "whsec_" prefix, when
// present, is dropped; the rest is base64-decoded when it is valid base64
// (standard alphabet, padded or not) and used as raw bytes otherwise. This
// keeps every secret minted the Standard Webhooks way ("whsec_" + base64 of
// random bytes) interoperable with the Standard Webhooks libraries, while a
// plain passphrase still works with inferq's own verifier.
func Key(secret string) []byte {
	s := strings.TrimPrefix(secret, SecretPrefix)
	if s != "" {
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			return b
		}
		if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
			return b
		}
	}
	return []byte(s)
}

// Sign returns the webhook-signature header value, "v1," followed by the
// base64 HMAC-SHA256 of "<id>.<unix seconds of ts>.<body>" under secret.
func Sign(secret, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(Key(secret), id, ts.Unix(), body))
}

func mac(key []byte, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a received webhook: the three Standard Webhooks headers
// must be present, the timestamp within tolerance of now (either way;
// tolerance <= 0 means DefaultTolerance), and at least one of the
// space-separated "v1,<base64>" signatures must match body under secret.
// Signatures of other versions are ignored. The comparison is constant
// time. body must be the raw request body, byte for byte.
func Verify(secret string, headers http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	id := headers.Get(HeaderID)
	tsRaw := headers.Get(HeaderTimestamp)
	sigs := headers.Get(HeaderSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrInvalidTimestamp, tsRaw)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := time.Unix(unix, 0)
	if now.Sub(ts) > tolerance {
		return ErrTimestampTooOld
	}
	if ts.Sub(now) > tolerance {
		return ErrTimestampTooNew
	}
	want := mac(Key(secret), id, unix, body)
	for _, s := range strings.Fields(sigs) {
		version, enc, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatch
}
