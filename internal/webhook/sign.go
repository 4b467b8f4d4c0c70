package webhook

import (
	"net/http"
	"time"

	"github.com/inferq/inferq/internal/webhook/signature"
)

// Standard Webhooks header names, as sent on every delivery.
const (
	HeaderID        = signature.HeaderID
	HeaderTimestamp = signature.HeaderTimestamp
	HeaderSignature = signature.HeaderSignature
)

// DefaultTolerance is the clock skew Verify accepts when given none.
const DefaultTolerance = signature.DefaultTolerance

// Errors returned by Verify (see package signature).
var (
	ErrMissingHeaders   = signature.ErrMissingHeaders
	ErrInvalidTimestamp = signature.ErrInvalidTimestamp
	ErrTimestampTooOld  = signature.ErrTimestampTooOld
	ErrTimestampTooNew  = signature.ErrTimestampTooNew
	ErrNoMatch          = signature.ErrNoMatch
)

// Sign returns the webhook-signature value "v1,<base64 HMAC-SHA256 over
// id.ts.body>". See package signature for how the secret is read.
func Sign(secret, id string, ts time.Time, body []byte) string {
	return signature.Sign(secret, id, ts, body)
}

// Verify checks a received webhook's headers, timestamp tolerance and
// signatures. It lives in package signature, which imports only the
// standard library; the client SDK should re-export that one.
func Verify(secret string, headers http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	return signature.Verify(secret, headers, body, tolerance, now)
}
