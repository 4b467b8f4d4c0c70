package webhook

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// startRedis runs a private redis-server on a free loopback port with its
// own data directory and returns its address. It never touches a Redis
// another test or service owns.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found in PATH: install it (Debian/Ubuntu: apt-get install redis-server) or run the project's setup script")
	}
	dir := t.TempDir()
	var lastErr error
	for range 5 {
		port := freePort(t)
		logf := filepath.Join(dir, "redis-"+port+".log")
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--logfile", logf)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := "127.0.0.1:" + port
		if lastErr = waitRedis(addr, exited); lastErr == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			return addr
		}
		_ = cmd.Process.Kill()
		<-exited
		if b, err := os.ReadFile(logf); err == nil {
			t.Logf("redis-server log:\n%s", b)
		}
	}
	t.Fatalf("redis-server did not come up: %v", lastErr)
	return ""
}

func waitRedis(addr string, exited <-chan error) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	var err error
	for range 200 {
		select {
		case werr := <-exited:
			return &exitError{werr}
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return err
}

type exitError struct{ err error }

func (e *exitError) Error() string { return "redis-server exited: " + errString(e.err) }

func errString(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// startServer runs an asynq server on the webhooks queue with handler h
// and retry delays from delay, until the test ends.
func startServer(t *testing.T, addr string, h asynq.Handler, delay asynq.RetryDelayFunc) {
	t.Helper()
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: addr}, asynq.Config{
		Concurrency:              2,
		Queues:                   map[string]int{QueueName: 1},
		RetryDelayFunc:           delay,
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		ShutdownTimeout:          2 * time.Second,
		LogLevel:                 asynq.ErrorLevel,
	})
	if err := srv.Start(h); err != nil {
		t.Fatalf("start asynq server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
}

func enqueue(t *testing.T, addr string, task *asynq.Task) *asynq.TaskInfo {
	t.Helper()
	c := asynq.NewClient(asynq.RedisClientOpt{Addr: addr})
	defer c.Close()
	info, err := c.Enqueue(task)
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return info
}

func inspector(t *testing.T, addr string) *asynq.Inspector {
	t.Helper()
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: addr})
	t.Cleanup(func() { in.Close() })
	return in
}

// eventually polls cond until it holds; the bound only stops a broken test
// from hanging and is no performance claim.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
