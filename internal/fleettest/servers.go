package fleettest

import (
	"context"
	"errors"
	"fmt"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Proc is a child process with its log file.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
	// URL is the process's HTTP address, for the fleet's services.
	URL  string
	done chan struct{}
	err  error
	once sync.Once
}

// StartProc starts bin with args and env (added to the current
// environment), logging stdout and stderr to logPath.
func StartProc(name, bin string, args, env []string, logPath string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group, so that stopping the fleet reaches any children
	// and a Ctrl-C of the demo reaches us first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to end, at most d, and reports whether it did.
func (p *Proc) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) { _ = p.Cmd.Process.Signal(sig) }

// Kill ends the process at once (SIGKILL) and waits for it.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to end (SIGTERM), and kills it after grace.
func (p *Proc) Stop(grace time.Duration) {
	p.once.Do(func() {
		p.Signal(syscall.SIGTERM)
		if !p.Wait(grace) {
			p.Kill()
		}
	})
}

// waitFor polls ok until it is true or d passes.
func waitFor(d time.Duration, p *Proc, ok func() bool) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return nil
		}
		if p != nil && p.Exited() {
			log, _ := os.ReadFile(p.Log)
			return fmt.Errorf("%s exited early: %s", p.Name, tail(log, 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("timed out")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Server is a backing server the harness started.
type Server struct {
	*Proc
	Addr string
	Dir  string
}

// StartNATS starts nats-server with JetStream on a free port, storing in
// dir.
func StartNATS(dir string) (*Server, error) {
	bin, err := Binary("nats-server")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	sd := filepath.Join(dir, "nats")
	if err := os.MkdirAll(sd, 0o755); err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := StartProc("nats-server", bin, []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", sd}, nil, filepath.Join(dir, "nats.log"))
	if err != nil {
		return nil, err
	}
	if err := waitFor(20*time.Second, p, func() bool { return dialable(addr) }); err != nil {
		p.Kill()
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	return &Server{Proc: p, Addr: addr, Dir: sd}, nil
}

// RestartNATS starts NATS again on the same port and store.
func RestartNATS(s *Server) (*Server, error) {
	bin, err := Binary("nats-server")
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	p, err := StartProc("nats-server", bin, []string{"-a", "127.0.0.1", "-p", port, "-js", "-sd", s.Dir}, nil, s.Log)
	if err != nil {
		return nil, err
	}
	if err := waitFor(20*time.Second, p, func() bool { return dialable(s.Addr) }); err != nil {
		p.Kill()
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	return &Server{Proc: p, Addr: s.Addr, Dir: s.Dir}, nil
}

// StartRedis starts redis-server on a free port, with its data in dir and
// no persistence.
func StartRedis(dir string) (*Server, error) {
	return startRedisNode(dir, "redis")
}

// MinIO credentials the harness uses.
const (
	MinIOUser     = "inferq"
	MinIOPassword = "inferq-secret-key"
)

// StartMinIO starts a MinIO server on a free port with its data in dir.
func StartMinIO(dir string) (*Server, error) {
	bin, err := Binary("minio")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cport, err := FreePort()
	if err != nil {
		return nil, err
	}
	md := filepath.Join(dir, "minio")
	if err := os.MkdirAll(md, 0o755); err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := []string{"MINIO_ROOT_USER=" + MinIOUser, "MINIO_ROOT_PASSWORD=" + MinIOPassword, "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1"}
	p, err := StartProc("minio", bin, []string{"server", md, "--quiet", "--address", addr, "--console-address", "127.0.0.1:" + strconv.Itoa(cport)}, env, filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	if err := waitFor(60*time.Second, p, func() bool { return minioLive(addr) }); err != nil {
		p.Kill()
		return nil, fmt.Errorf("minio: %w", err)
	}
	return &Server{Proc: p, Addr: addr, Dir: md}, nil
}

// RestartMinIO starts MinIO again on the same address and data.
func RestartMinIO(s *Server) (*Server, error) {
	bin, err := Binary("minio")
	if err != nil {
		return nil, err
	}
	env := []string{"MINIO_ROOT_USER=" + MinIOUser, "MINIO_ROOT_PASSWORD=" + MinIOPassword, "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1"}
	cport, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := StartProc("minio", bin, []string{"server", s.Dir, "--quiet", "--address", s.Addr, "--console-address", "127.0.0.1:" + strconv.Itoa(cport)}, env, s.Log)
	if err != nil {
		return nil, err
	}
	if err := waitFor(60*time.Second, p, func() bool { return minioLive(s.Addr) }); err != nil {
		p.Kill()
		return nil, fmt.Errorf("minio: %w", err)
	}
	return &Server{Proc: p, Addr: s.Addr, Dir: s.Dir}, nil
}

// minioLive reports whether MinIO answers S3 calls: its health endpoint
// says ready a moment before the object layer is initialized.
func minioLive(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(MinIOUser, MinIOPassword, "")})
	if err != nil {
		return false
	}
	_, err = c.ListBuckets(ctx)
	return err == nil
}
