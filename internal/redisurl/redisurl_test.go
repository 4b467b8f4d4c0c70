package redisurl

import (
	"strings"
	"testing"
)

func TestParseShapes(t *testing.T) {
	for _, c := range []struct {
		url   string
		shape Shape
		check func(*Options) bool
	}{
		{"redis://127.0.0.1:6379/2", Single, func(o *Options) bool { return o.Single.Addr == "127.0.0.1:6379" && o.Single.DB == 2 }},
		{"redis://:pw@h:1?addr=h2:2&addr=h3:3", Cluster, func(o *Options) bool {
			return strings.Join(o.Cluster.Addrs, ",") == "h:1,h2:2,h3:3" && o.Cluster.Password == "pw"
		}},
		{"redis-sentinel://:pw@s1:26379,s2:26380,s3/mymaster/3?sentinel_password=sp", Sentinel, func(o *Options) bool {
			f := o.Failover
			return strings.Join(f.SentinelAddrs, ",") == "s1:26379,s2:26380,s3:26379" && f.MasterName == "mymaster" &&
				f.DB == 3 && f.Password == "pw" && f.SentinelPassword == "sp"
		}},
		{"redis-sentinel://s1:1/m", Sentinel, func(o *Options) bool { return o.Failover.DB == 0 }},
	} {
		o, err := Parse(c.url)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if o.Shape != c.shape || !c.check(o) {
			t.Errorf("%s: got shape %s, %+v", c.url, o.Shape, o)
		}
	}
}

// Every malformed URL is refused with an error that names the problem and
// never echoes the password.
func TestParseRefuses(t *testing.T) {
	for _, u := range []string{
		"",
		"localhost:6379",
		"http://h:1",
		"redis://:secretpw@h:1?addr=",
		"redis://:secretpw@h:1?addr=h2:99999",
		"redis://:secretpw@h:1?addr=h2:2&bogus=1",
		"redis://:secretpw@h:1/x",
		"redis-sentinel://:secretpw@/m",
		"redis-sentinel://:secretpw@s1:1",
		"redis-sentinel://:secretpw@s1:1/",
		"redis-sentinel://:secretpw@s1:0/m",
		"redis-sentinel://:secretpw@s1:1/m/99",
		"redis-sentinel://:secretpw@s1:1/m?other=1",
		"redis-sentinel://s1:1/m%zz?%zz",
		"redis://h:1?" + strings.Repeat("addr=h:1&", 500),
		"redis-sentinel://" + strings.Repeat("s:1,", 100) + "s:1/m",
	} {
		o, err := Parse(u)
		if err == nil {
			t.Errorf("%q: accepted as %s", u, o.Shape)
			continue
		}
		if strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%q: error shows the password: %v", u, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"redis://h:1/0", "redis://h:1?addr=h:2", "redis-sentinel://a:1,b:2/m/1?sentinel_password=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := Parse(s)
		if err != nil {
			return
		}
		if (o.Shape == Single) != (o.Single != nil) || (o.Shape == Cluster) != (o.Cluster != nil) || (o.Shape == Sentinel) != (o.Failover != nil) {
			t.Fatalf("%q: shape %s with options %+v", s, o.Shape, o)
		}
		_ = o.Describe()
	})
}
