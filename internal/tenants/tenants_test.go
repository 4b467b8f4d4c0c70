package tenants

import (
	"strings"
	"testing"
	"time"
)

const example = `
tiers:
  premium:  {deadline: 2s}
  gold:     {deadline: 30s, share: 0.4}
tenants:
  - name: acme
    tier: premium
    api_keys: ["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
    webhook_secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    max_queued: 100
  - name: globex
    tier: gold
    api_keys: []
`

func TestParse(t *testing.T) {
	r, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	// "test" hashes to the key in the file (API.md's example).
	acme := r.Authenticate("test")
	if acme == nil || acme.Name != "acme" || acme.MaxQueued != 100 {
		t.Fatalf("authenticate: %+v", acme)
	}
	if r.Authenticate("Test") != nil || r.Authenticate("") != nil {
		t.Fatal("wrong keys must not authenticate")
	}
	if tier, _ := r.Tier("premium"); tier.Deadline != 2*time.Second || tier.Share != 0.5 {
		t.Fatalf("premium overridden: %+v", tier)
	}
	if tier, _ := r.Tier("bulk"); tier.Deadline != time.Hour {
		t.Fatalf("default bulk kept: %+v", tier)
	}
	if g := r.Tenant("globex"); g.MaxQueued != DefaultMaxQueued {
		t.Fatalf("default quota: %+v", g)
	}
}

func TestParseRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"plain key":      "tenants: [{name: a, tier: bulk, api_keys: [\"hunter2\"]}]",
		"short hash":     "tenants: [{name: a, tier: bulk, api_keys: [\"sha256:abcd\"]}]",
		"unknown tier":   "tenants: [{name: a, tier: platinum}]",
		"duplicate name": "tenants: [{name: a, tier: bulk}, {name: a, tier: bulk}]",
		"shared key": `tenants: [{name: a, tier: bulk, api_keys: ["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]},
  {name: b, tier: bulk, api_keys: ["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]}]`,
		"unknown field": "tenants: [{name: a, tier: bulk, apikeys: []}]",
		"bad deadline":  "tiers: {x: {deadline: -1s}}",
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNewKey(t *testing.T) {
	k, stored := NewKey()
	k2, _ := NewKey()
	if k == k2 || !strings.HasPrefix(k, "iq_") || stored != HashKey(k) {
		t.Fatalf("keys %q %q %q", k, k2, stored)
	}
	r, err := Parse([]byte("tenants: [{name: a, tier: bulk, api_keys: [\"" + stored + "\"]}]"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Authenticate(k) == nil {
		t.Fatal("a new key must open its tenant")
	}
}

func TestKeySet(t *testing.T) {
	key, stored := NewKey()
	ks, err := ParseKeySet(" " + stored + ",," + strings.TrimPrefix(HashKey("other"), "sha256:"))
	if err != nil {
		t.Fatal(err)
	}
	if ks.Len() != 2 || !ks.Has(key) || !ks.Has("other") || ks.Has("") || ks.Has("nope") {
		t.Fatalf("key set: len %d", ks.Len())
	}
	if _, err := ParseKeySet("hunter2"); err == nil {
		t.Fatal("a clear key was accepted as a hash")
	}
	var none *KeySet
	if none.Has(key) {
		t.Fatal("nil set has a key")
	}
}
