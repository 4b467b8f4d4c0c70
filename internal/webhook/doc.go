// Package webhook delivers signed webhooks for inferq: events built by
// NewEvent, enqueued as asynq tasks by NewTask, sent by Deliverer, retried
// on the Standard Webhooks schedule by RetryDelay, and listed or replayed
// once exhausted by ListFailed and Replay. Guard keeps destinations off the
// deployment's own network.
//
// Decisions:
//
//   - Signing follows Standard Webhooks v1 (package signature holds it,
//     standard library only, for the client SDK to re-export). A secret's
//     "whsec_" prefix is dropped and the rest base64-decoded when it is
//     valid base64, used as raw bytes otherwise; "whsec_" + base64 secrets,
//     like API.md's example, therefore interoperate with the Standard
//     Webhooks libraries. webhook-id is the event id, the same on every
//     retry and replay; webhook-timestamp and the signature are made at
//     each attempt, so late retries pass receivers' 5-minute tolerance.
//   - Secrets stay out of Redis: a task carries the tenant name, and
//     Deliverer asks Config.Secrets at send time. A tenant with no secret
//     gets its deliveries archived, not sent unsigned.
//   - Retries: the first attempt at once, then 5 s, 5 min, 30 min, 2 h, 5 h,
//     10 h, 14 h, 20 h, 24 h (MaxRetry = 9), each ±10 % jitter. A receiver's
//     Retry-After is honoured when it asks for a later retry than the
//     schedule (never earlier; capped at 24 h). It travels from the handler
//     to RetryDelay inside *DeliveryError. Exhausted tasks are archived by
//     asynq in queue "webhooks"; Replay gives one more attempt.
//   - Outcomes: 2xx ends delivery. 410 Gone ends it for good: the task is
//     archived (asynq.SkipRetry) and, when Config.Gone is set, the tenant's
//     URL is recorded in Redis without expiry so later events to it are
//     dropped unsent (GoneList.Forget lifts that). A 3xx is not followed
//     and counts as a failure, like every other status and transport error,
//     and is retried. A refused address or malformed URL is archived at once.
//   - SSRF: Guard.CheckURL at submit (http/https only, the host must
//     resolve, every address must be allowed), and at delivery the dialer's
//     Control checks the address actually connected to, which defeats DNS
//     rebinding; no proxy is used. Refused: IPv4 0/8, 10/8, 100.64/10,
//     127/8, 169.254/16 (metadata), 172.16/12, 192.0.0/24, 192.0.2/24,
//     192.88.99/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24,
//     224/4, 240/4; IPv6 ::/96, 100::/64, 2001::/32 (Teredo), 2001:db8::/32,
//     64:ff9b:1::/48, fc00::/7, fe80::/10, fec0::/10, ff00::/8; and IPv4
//     inside IPv6 (::ffff:0:0/96, 64:ff9b::/96, 2002::/16) by the IPv4
//     address it carries. Guard.Allow (INFERQ_WEBHOOK_ALLOW_NETS) overrides.
//   - A webhook URL is the receiver's secret as much as its address (a
//     token in the query, a user and password before the host). Logs and
//     errors name a destination by its host, or by RedactURL (scheme, host
//     and path; userinfo and query replaced by "redacted"); Deliverer
//     redacts every error it returns, since asynq stores its text in Redis
//     and `inferq webhooks failed` prints it, and ListFailed redacts again
//     what asynq stored. Only the task payload keeps the whole URL: it is
//     what the next attempt dials.
//   - NewTask sets the asynq task id to the webhook-id, so a second enqueue
//     of the same event while asynq still holds it fails with
//     asynq.ErrTaskIDConflict rather than sending twice.
package webhook
