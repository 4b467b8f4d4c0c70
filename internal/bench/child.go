package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// The harness runs its load generators and the asynq peer's worker as
// processes of their own (the issue wants load "from another process", and
// the peer must pay for its own process like the fleet's worker does). They
// are the harness's own binary, started again with childEnv naming the
// part to play and a JSON spec on stdin: no second binary to build.
const childEnv = "INFERQ_BENCH_CHILD"

// Child modes.
const (
	modeLoad = "load" // a load generator: spec loadSpec, result loadResult on stdout
	modePeer = "peer" // the asynq peer's worker: spec peerSpec, "ready" on stdout, runs until SIGTERM
)

// IsChild reports whether this process was started by the harness as one
// of its helper processes. cmd/bench and the package's tests call it first
// thing, and hand over to RunChild when it is true.
func IsChild() bool { return os.Getenv(childEnv) != "" }

// RunChild plays the part named by the environment and returns the exit
// code.
func RunChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch mode := os.Getenv(childEnv); mode {
	case modeLoad:
		var spec loadSpec
		if err = json.NewDecoder(os.Stdin).Decode(&spec); err == nil {
			var res *loadResult
			if res, err = runLoad(ctx, spec); err == nil {
				err = json.NewEncoder(os.Stdout).Encode(res)
			}
		}
	case modePeer:
		var spec peerSpec
		if err = json.NewDecoder(os.Stdin).Decode(&spec); err == nil {
			err = runPeerWorker(ctx, spec, os.Stdout)
		}
	default:
		err = fmt.Errorf("unknown %s=%q", childEnv, mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	return 0
}

// child is a running helper process.
type child struct {
	cmd   *exec.Cmd
	out   bytes.Buffer // stdout after any "ready" line; read only after done
	ready chan struct{}
	done  chan struct{}
	err   error
	log   string
}

// spawn starts this binary as a helper in mode with spec on stdin; its
// stderr goes to logPath.
func spawn(mode string, spec any, logPath string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	in, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s helper: %w", mode, err)
	}
	c := &child{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{}), log: logPath}
	go func() {
		defer close(c.done)
		defer lf.Close()
		r := bufio.NewReader(pipe)
		readied := false
		for {
			line, err := r.ReadBytes('\n')
			if !readied && strings.TrimSpace(string(line)) == "ready" {
				readied = true
				close(c.ready)
			} else {
				c.out.Write(line)
			}
			if err != nil {
				break
			}
		}
		c.err = cmd.Wait()
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// wait waits for the helper to end and decodes its stdout into out.
func (c *child) wait(ctx context.Context, out any) error {
	select {
	case <-c.done:
	case <-ctx.Done():
		_ = c.cmd.Process.Kill()
		<-c.done
		return ctx.Err()
	}
	if c.err != nil {
		return fmt.Errorf("helper: %v: %s", c.err, c.tail())
	}
	if out != nil {
		if err := json.Unmarshal(c.out.Bytes(), out); err != nil {
			return fmt.Errorf("helper output: %w: %q", err, c.out.String())
		}
	}
	return nil
}

// stop asks the helper to end (SIGTERM), and kills it after grace.
func (c *child) stop(grace time.Duration) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *child) tail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// waitReady waits for the helper to print "ready".
func (c *child) waitReady(d time.Duration) error {
	select {
	case <-c.ready:
		return nil
	case <-c.done:
		return fmt.Errorf("helper ended before it was ready: %v: %s", c.err, c.tail())
	case <-time.After(d):
		return errors.New("helper not ready in time: " + c.tail())
	}
}
