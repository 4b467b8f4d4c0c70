package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadOrder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("nats_url: nats://file:4222\nredis_url: redis://file:6379\nack_wait: 7s\nmodels: a,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INFERQ_REDIS_URL", "redis://env:6379")
	t.Setenv("INFERQ_S3_BUCKET", "from-env")
	c, err := Load("test", []string{"-config", file, "-s3-bucket", "from-flag", "--max-deliver=9"})
	if err != nil {
		t.Fatal(err)
	}
	if c.NATSURL != "nats://file:4222" || c.RedisURL != "redis://env:6379" || c.S3Bucket != "from-flag" ||
		c.AckWait != 7*time.Second || c.MaxDeliver != 9 || c.HTTPAddr != Default().HTTPAddr {
		t.Fatalf("config: %+v", c)
	}
	if got := c.ModelList(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("models: %v", got)
	}
}

func TestLoadRefuses(t *testing.T) {
	t.Setenv("INFERQ_ACK_WAIT", "soon")
	if _, err := Load("test", nil); err == nil {
		t.Fatal("a bad duration in the environment must fail")
	}
	t.Setenv("INFERQ_ACK_WAIT", "")
	os.Unsetenv("INFERQ_ACK_WAIT")
	if _, err := Load("test", []string{"-max-deliver", "1"}); err == nil {
		t.Fatal("max-deliver 1 must fail validation")
	}
	if _, err := Load("test", []string{"-config", "/does/not/exist"}); err == nil {
		t.Fatal("a missing config file must fail")
	}
}
