// Package redisurl turns INFERQ_REDIS_URL into the one redis.UniversalClient
// that every inferq process (producer, scheduler, worker, CLI, asynq's
// webhook and upkeep tasks) talks to, whichever of Redis's three shapes the
// deployment runs:
//
//   - a single node: redis://[user:pass@]host:port[/db] (rediss:// for TLS);
//   - a Cluster, in go-redis's cluster URL form: the seed nodes as the host
//     and repeated addr parameters,
//     redis://[user:pass@]host1:port?addr=host2:port&addr=host3:port;
//   - a Sentinel set:
//     redis-sentinel://[user:pass@]s1:26379,s2:26379,s3:26379/MASTER[/db]
//     (the password is the data nodes'; sentinel_password=... for the
//     Sentinels' own, if they ask for one).
package redisurl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Shape names the kind of deployment a URL points at.
type Shape string

// The shapes a URL may name.
const (
	Single   Shape = "single"
	Cluster  Shape = "cluster"
	Sentinel Shape = "sentinel"
)

// maxLen bounds the URL: it comes from the environment or a flag, and a
// list of nodes never needs more.
const maxLen = 4096

// maxNodes bounds the seed and sentinel lists.
const maxNodes = 64

// clusterReload is how often a cluster client reloads the slot map when
// the URL does not say.
const clusterReload = 2 * time.Second

// Options is a parsed URL: exactly one of the three option sets is set,
// the one Shape names.
type Options struct {
	Shape    Shape
	Single   *redis.Options
	Cluster  *redis.ClusterOptions
	Failover *redis.FailoverOptions
}

// Parse reads a Redis URL of any of the three shapes. Errors name the URL's
// shape and what is wrong, never the password.
func Parse(raw string) (*Options, error) {
	if raw == "" {
		return nil, errors.New("redis url is empty")
	}
	if len(raw) > maxLen {
		return nil, fmt.Errorf("redis url is %d bytes, over the limit of %d", len(raw), maxLen)
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("redis url has no scheme: want redis://, rediss:// or redis-sentinel://")
	}
	switch strings.ToLower(scheme) {
	case "redis-sentinel":
		f, err := parseSentinel(raw)
		if err != nil {
			return nil, fmt.Errorf("redis sentinel url: %w", err)
		}
		return &Options{Shape: Sentinel, Failover: f}, nil
	case "redis", "rediss":
	default:
		return nil, fmt.Errorf("redis url scheme %q: want redis://, rediss:// or redis-sentinel://", scheme)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", redact(err))
	}
	// go-redis's cluster form: the addr parameter lists further seeds. A
	// one-seed cluster would read as a single node, so a cluster URL always
	// names at least two (any two nodes of the cluster will do).
	if u.Query().Has("addr") {
		if len(u.Query()["addr"]) >= maxNodes {
			return nil, fmt.Errorf("redis cluster url names over %d nodes", maxNodes)
		}
		c, err := redis.ParseClusterURL(raw)
		if err != nil {
			return nil, fmt.Errorf("redis cluster url: %w", redact(err))
		}
		for _, a := range c.Addrs {
			if err := checkAddr(a); err != nil {
				return nil, fmt.Errorf("redis cluster url: %w", err)
			}
		}
		// go-redis reloads the slot map on a MOVED reply, but a killed
		// primary answers nothing: until the next periodic reload (60 s by
		// default) its slots stay pointed at the dead node, long after its
		// replica took over. A reload is one CLUSTER SLOTS, cheap at 2 s.
		if !u.Query().Has("cluster_state_reload_interval") {
			c.ClusterStateReloadInterval = clusterReload
		}
		return &Options{Shape: Cluster, Cluster: c}, nil
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", redact(err))
	}
	return &Options{Shape: Single, Single: o}, nil
}

// parseSentinel reads redis-sentinel://[user:pass@]h1:p1,h2:p2/MASTER[/db]
// [?sentinel_password=...&sentinel_username=...]. url.Parse cannot take a
// host list, so the authority is split by hand.
func parseSentinel(raw string) (*redis.FailoverOptions, error) {
	rest := raw[len("redis-sentinel://"):]
	rest, query, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	f := &redis.FailoverOptions{}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		user, pass, hasPass := strings.Cut(authority[:at], ":")
		var err error
		if f.Username, err = url.PathUnescape(user); err != nil {
			return nil, errors.New("bad escape in user name")
		}
		if hasPass {
			if f.Password, err = url.PathUnescape(pass); err != nil {
				return nil, errors.New("bad escape in password")
			}
		}
		authority = authority[at+1:]
	}
	if authority == "" {
		return nil, errors.New("no sentinel addresses (want redis-sentinel://host:port,host:port/MASTER)")
	}
	for _, a := range strings.Split(authority, ",") {
		if len(f.SentinelAddrs) == maxNodes {
			return nil, fmt.Errorf("over %d sentinels", maxNodes)
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, "26379")
		}
		if err := checkAddr(a); err != nil {
			return nil, err
		}
		f.SentinelAddrs = append(f.SentinelAddrs, a)
	}
	master, db, hasDB := strings.Cut(path, "/")
	if master == "" {
		return nil, errors.New("no master name (want redis-sentinel://host:port,.../MASTER[/db])")
	}
	if strings.ContainsAny(master, " \t\r\n") || len(master) > 256 {
		return nil, fmt.Errorf("bad master name %q", master)
	}
	f.MasterName = master
	if hasDB && db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 || n > 15 {
			return nil, fmt.Errorf("bad database %q (want 0..15)", db)
		}
		f.DB = n
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("bad query: %w", err)
	}
	for k, v := range q {
		switch k {
		case "sentinel_password":
			f.SentinelPassword = v[len(v)-1]
		case "sentinel_username":
			f.SentinelUsername = v[len(v)-1]
		default:
			return nil, fmt.Errorf("unknown parameter %q", k)
		}
	}
	return f, nil
}

// checkAddr refuses an address that is not host:port with a port in range.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("address %q: %w", a, err)
	}
	if host == "" {
		return fmt.Errorf("address %q has no host", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("address %q: bad port", a)
	}
	return nil
}

// redact drops the URL from a url.Error, which would print the password.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Open parses raw and returns a client for its shape, not yet connected.
func Open(raw string) (redis.UniversalClient, Shape, error) {
	o, err := Parse(raw)
	if err != nil {
		return nil, "", err
	}
	return o.Client(), o.Shape, nil
}

// Client makes the client the options name.
func (o *Options) Client() redis.UniversalClient {
	switch o.Shape {
	case Cluster:
		return redis.NewClusterClient(o.Cluster)
	case Sentinel:
		return redis.NewFailoverClient(o.Failover)
	default:
		return redis.NewClient(o.Single)
	}
}

// Describe says where the options point, without credentials, for logs
// and errors.
func (o *Options) Describe() string {
	switch o.Shape {
	case Cluster:
		return "redis cluster " + strings.Join(o.Cluster.Addrs, ",")
	case Sentinel:
		return "redis sentinel " + strings.Join(o.Failover.SentinelAddrs, ",") + " master " + o.Failover.MasterName
	default:
		return "redis " + o.Single.Addr
	}
}
