// Package signature signs and verifies webhooks after the Standard Webhooks
// scheme (https://www.standardwebhooks.com): the headers webhook-id,
// webhook-timestamp (Unix seconds) and webhook-signature
// ("v1,<base64 HMAC-SHA256 over id.timestamp.body>", several separated by
// spaces during a secret rotation).
//
// It imports the standard library only, so the public client SDK can
// re-export Verify without pulling asynq or Redis into a receiver's build;
// package webhook wraps it for the sending side.
//
// Secrets: a secret may carry the "whsec_" prefix. The rest is
// base64-decoded when it is valid base64 and used as raw bytes otherwise
// (see Key). Standard Webhooks secrets are always "whsec_" + base64, so
// those interoperate with the Standard Webhooks libraries exactly; the raw
// fallback only exists so a deployment that typed a passphrase still works
// with inferq's verifier. The signed timestamp is the time of each delivery
// attempt, so a retry many hours later still passes the receiver's
// tolerance check, while webhook-id stays the same across retries for the
// receiver's deduplication.
package signature
