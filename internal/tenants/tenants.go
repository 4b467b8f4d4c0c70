// Package tenants reads the tenants file: the tiers with their deadlines and
// shares, and each tenant's tier, hashed API keys, webhook secret and
// quotas. API keys are stored only as SHA-256 hashes, so the file opens
// nothing by itself.
package tenants

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Tier names a deadline and a share of the fleet.
type Tier struct {
	Name     string        `yaml:"-"`
	Deadline time.Duration `yaml:"deadline"`
	// Share is the fraction of fleet capacity the tier is guaranteed under
	// overload; unused share is lent to the other tiers.
	Share float64 `yaml:"share"`
}

// DefaultTiers are used when the file names none (DESIGN.md).
func DefaultTiers() map[string]Tier {
	return map[string]Tier{
		"premium":  {Name: "premium", Deadline: 5 * time.Second, Share: 0.5},
		"standard": {Name: "standard", Deadline: 60 * time.Second, Share: 0.3},
		"bulk":     {Name: "bulk", Deadline: time.Hour, Share: 0.2},
	}
}

// Tenant is one customer of the fleet.
type Tenant struct {
	Name          string   `yaml:"name"`
	Tier          string   `yaml:"tier"`
	APIKeys       []string `yaml:"api_keys"`
	WebhookSecret string   `yaml:"webhook_secret"`
	// MaxQueued bounds the tenant's unfinished jobs; past it submits get
	// 429. Zero means the default of 100,000.
	MaxQueued int64 `yaml:"max_queued"`
	// RatePerSec bounds submit requests per second (0: no limit).
	RatePerSec float64 `yaml:"rate_per_sec"`
}

// DefaultMaxQueued is a tenant's queue quota when the file sets none.
const DefaultMaxQueued = 100000

// Registry is the parsed tenants file.
type Registry struct {
	Tiers   map[string]Tier
	tenants map[string]*Tenant
	byKey   map[[32]byte]*Tenant
}

type file struct {
	Tiers   map[string]Tier `yaml:"tiers"`
	Tenants []Tenant        `yaml:"tenants"`
}

// Load reads and checks the tenants file at path.
func Load(path string) (*Registry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenants file: %w", err)
	}
	r, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("tenants file %s: %w", path, err)
	}
	return r, nil
}

// Parse reads a tenants file's bytes.
func Parse(b []byte) (*Registry, error) {
	var f file
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	r := &Registry{Tiers: DefaultTiers(), tenants: map[string]*Tenant{}, byKey: map[[32]byte]*Tenant{}}
	for name, t := range f.Tiers {
		if t.Deadline <= 0 {
			return nil, fmt.Errorf("tier %s: deadline must be positive", name)
		}
		if t.Share < 0 || t.Share > 1 {
			return nil, fmt.Errorf("tier %s: share must be within 0..1", name)
		}
		t.Name = name
		if t.Share == 0 {
			t.Share = r.Tiers[name].Share
		}
		r.Tiers[name] = t
	}
	for i := range f.Tenants {
		t := &f.Tenants[i]
		if t.Name == "" {
			return nil, fmt.Errorf("tenant %d: no name", i)
		}
		if _, dup := r.tenants[t.Name]; dup {
			return nil, fmt.Errorf("tenant %s: listed twice", t.Name)
		}
		if _, ok := r.Tiers[t.Tier]; !ok {
			return nil, fmt.Errorf("tenant %s: unknown tier %q", t.Name, t.Tier)
		}
		if t.MaxQueued == 0 {
			t.MaxQueued = DefaultMaxQueued
		}
		for _, k := range t.APIKeys {
			h, err := parseHash(k)
			if err != nil {
				return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
			}
			if other, dup := r.byKey[h]; dup {
				return nil, fmt.Errorf("tenant %s: an API key is also %s's", t.Name, other.Name)
			}
			r.byKey[h] = t
		}
		r.tenants[t.Name] = t
	}
	return r, nil
}

func parseHash(s string) ([32]byte, error) {
	var h [32]byte
	hexs, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return h, errors.New(`api key must be stored as "sha256:<hex>" (inferq keys new prints it)`)
	}
	b, err := hex.DecodeString(hexs)
	if err != nil || len(b) != 32 {
		return h, errors.New("api key hash must be 64 hex digits")
	}
	copy(h[:], b)
	return h, nil
}

// Authenticate finds the tenant holding API key, or nil. The lookup is by
// the key's SHA-256, so timing reveals nothing about stored keys.
func (r *Registry) Authenticate(key string) *Tenant {
	if key == "" {
		return nil
	}
	return r.byKey[sha256.Sum256([]byte(key))]
}

// Tenant returns the tenant called name, or nil.
func (r *Registry) Tenant(name string) *Tenant { return r.tenants[name] }

// Names lists the tenants, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.tenants))
	for n := range r.tenants {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Tier returns the named tier and whether it exists.
func (r *Registry) Tier(name string) (Tier, bool) {
	t, ok := r.Tiers[name]
	return t, ok
}

// NewKey makes a fresh API key and the line that stores it in the file.
func NewKey() (key, stored string) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	key = "iq_" + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashKey(key)
}

// HashKey is the stored form of an API key.
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(h[:])
}

// KeySet is a set of keys held, like API keys, only as SHA-256 hashes:
// the operator keys of INFERQ_ADMIN_KEYS.
type KeySet struct{ hashes map[[32]byte]bool }

// ParseKeySet reads a comma-separated list of stored keys, each
// "sha256:<hex>" as HashKey writes it (a bare 64-digit hex is taken too).
func ParseKeySet(list string) (*KeySet, error) {
	ks := &KeySet{hashes: map[[32]byte]bool{}}
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.HasPrefix(s, "sha256:") {
			s = "sha256:" + s
		}
		h, err := parseHash(s)
		if err != nil {
			return nil, err
		}
		ks.hashes[h] = true
	}
	return ks, nil
}

// Has reports whether key is one of the set's; like Authenticate, it
// compares hashes.
func (ks *KeySet) Has(key string) bool {
	return ks != nil && key != "" && ks.hashes[sha256.Sum256([]byte(key))]
}

// Len is how many keys the set holds.
func (ks *KeySet) Len() int {
	if ks == nil {
		return 0
	}
	return len(ks.hashes)
}
