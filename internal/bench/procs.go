package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cpuUse is CPU time by process name.
type cpuUse struct {
	ticks map[string]time.Duration
}

// clockTick is Linux's USER_HZ, the unit of /proc/<pid>/stat's times.
const clockTick = 10 * time.Millisecond

// readCPU reads the user+system CPU time of each process.
func readCPU(procs map[string]int) *cpuUse {
	u := &cpuUse{ticks: map[string]time.Duration{}}
	for name, pid := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) in parens.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		u.ticks[name] = time.Duration(ut+st) * clockTick
	}
	return u
}

func (u *cpuUse) minus(o *cpuUse) *cpuUse {
	out := &cpuUse{ticks: map[string]time.Duration{}}
	for k, v := range u.ticks {
		out.ticks[k] = v - o.ticks[k]
	}
	return out
}

func (u *cpuUse) total() time.Duration {
	var t time.Duration
	for _, v := range u.ticks {
		t += v
	}
	return t
}

func childCPU(c *child) time.Duration {
	if ps := c.cmd.ProcessState; ps != nil {
		return ps.UserTime() + ps.SystemTime()
	}
	return 0
}

// findPerf returns the perf binary when it can sample this user's
// processes here, else "".
func findPerf() string {
	p, err := exec.LookPath("perf")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := filepath.Join(os.TempDir(), fmt.Sprintf("inferq-bench-perfcheck-%d", os.Getpid()))
	defer os.Remove(out)
	if err := exec.CommandContext(ctx, p, "record", "-q", "-F", "99", "-o", out, "--", "true").Run(); err != nil {
		return ""
	}
	return p
}

// profile is one process's CPU profile, summarised.
type profile struct {
	proc string
	how  string
	top  []string // "share symbol"
	err  error
}

// profileProcs samples every process of procs for d at once: Go services
// with pprof when their ops listener serves /debug/pprof (INFERQ_PPROF=1),
// every process with perf otherwise. It returns the summaries by process.
func (e *env) profileProcs(ctx context.Context, procs map[string]int, pprofAddrs map[string]string, bins map[string]string, d time.Duration) []profile {
	dir, err := e.subdir("profiles")
	if err != nil {
		return nil
	}
	var mu sync.Mutex
	var out []profile
	var wg sync.WaitGroup
	for name, pid := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := profile{proc: name}
			if addr := pprofAddrs[name]; addr != "" && hasPprof(addr) {
				p.how = "pprof"
				p.top, p.err = pprofTop(ctx, addr, bins[name], filepath.Join(dir, name+".pprof"), d)
			} else if e.perf != "" {
				p.how = "perf"
				p.top, p.err = perfTop(ctx, e.perf, pid, filepath.Join(dir, name+".perf"), d)
			} else {
				p.err = fmt.Errorf("no pprof endpoint and no usable perf")
			}
			mu.Lock()
			out = append(out, p)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].proc < out[j].proc })
	return out
}

func hasPprof(addr string) bool {
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

const topN = 12

func pprofTop(ctx context.Context, addr, bin, path string, d time.Duration) ([]string, error) {
	secs := max(1, int(d.Seconds()))
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	return pprofTopFile(ctx, bin, path)
}

// pprofTopFile summarises a CPU profile with `go tool pprof -top`.
func pprofTopFile(ctx context.Context, bin, path string) ([]string, error) {
	args := []string{"tool", "pprof", "-top", "-nodecount=" + strconv.Itoa(topN)}
	if bin != "" {
		args = append(args, bin)
	}
	out, err := exec.CommandContext(ctx, "go", append(args, path)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w", err)
	}
	// Keep the table's rows: "flat flat% sum% cum cum% name".
	var top []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && strings.HasSuffix(f[1], "%") && strings.HasSuffix(f[4], "%") {
			top = append(top, fmt.Sprintf("%s flat, %s cum: %s", f[1], f[4], strings.Join(f[5:], " ")))
		}
	}
	return top, nil
}

func perfTop(ctx context.Context, perf string, pid int, path string, d time.Duration) ([]string, error) {
	rec := exec.CommandContext(ctx, perf, "record", "-q", "-g", "-F", "499", "-p", strconv.Itoa(pid), "-o", path, "--", "sleep", fmt.Sprintf("%.1f", d.Seconds()))
	if out, err := rec.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("perf record: %v: %s", err, bytes.TrimSpace(out))
	}
	// Where the samples fall: the kernel (system calls, I/O, scheduling),
	// the program, its libraries.
	dsos, err := perfReport(ctx, perf, path, "--no-children", "--sort", "dso")
	if err != nil {
		return nil, err
	}
	var top []string
	var parts []string
	for _, l := range dsos {
		if len(parts) < 5 {
			parts = append(parts, l[1]+" "+l[0])
		}
	}
	top = append(top, "by object: "+strings.Join(parts, ", "))
	// The program's own functions, cumulative (callees included), so that
	// handlers and library calls show above the runtime's leaves.
	syms, err := perfReport(ctx, perf, path, "--children", "--sort", "sym", "-g", "none")
	if err != nil {
		return nil, err
	}
	var lastCum string
	for _, l := range syms {
		name := l[len(l)-1]
		if !interesting(name) {
			continue
		}
		row := fmt.Sprintf("%s cum, %s self: %s", l[0], l[1], name)
		// One call chain shows as a run of frames with the same
		// cumulative share: keep its deepest frame only.
		if prev := len(top) - 1; prev > 0 && l[0] == lastCum {
			top[prev] = row
			continue
		}
		lastCum = l[0]
		top = append(top, row)
		if len(top) == topN {
			break
		}
	}
	return top, nil
}

// perfReport runs perf report and returns its rows as fields: the
// percentages first, the sort keys last.
func perfReport(ctx context.Context, perf, path string, args ...string) ([][]string, error) {
	cmd := exec.CommandContext(ctx, perf, append([]string{"report", "-q", "--stdio", "-i", path}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %w", err)
	}
	var rows [][]string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(strings.TrimSpace(l))
		if len(f) < 2 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		// Drop perf's "[.]" and "[k]" markers; keep the name whole.
		var keep []string
		for _, x := range f {
			if x != "[.]" && x != "[k]" {
				keep = append(keep, x)
			}
		}
		if len(keep) > 2 && strings.HasSuffix(keep[1], "%") {
			keep = append(keep[:2], strings.Join(keep[2:], " "))
		} else if len(keep) > 1 {
			keep = append(keep[:1], strings.Join(keep[1:], " "))
		}
		rows = append(rows, keep)
	}
	return rows, nil
}

// interesting keeps the frames that say what a process does: not the Go
// runtime's plumbing, not unresolved addresses, not the kernel's
// entry points.
func interesting(sym string) bool {
	for _, p := range []string{"runtime.", "0x", "[unknown]", "entry_SYSCALL", "do_syscall", "x64_sys_call", "_start", "__libc_start", "main", "gogo", "goexit", "internal/runtime", "ret_from_fork", "start_thread", "clone"} {
		if strings.HasPrefix(sym, p) {
			return false
		}
	}
	return true
}

// profileMarkdown renders profiles as one list per process.
func profileMarkdown(ps []profile, cpuPerJob map[string]float64) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "**%s**", p.proc)
		if v, ok := cpuPerJob[p.proc]; ok {
			fmt.Fprintf(&b, " (%.0f µs CPU per job)", v)
		}
		if p.err != nil {
			fmt.Fprintf(&b, ": no profile: %v\n\n", p.err)
			continue
		}
		if p.how == "perf" {
			b.WriteString(", perf record -g: where its samples fall, then its functions by cumulative share (callees included; a chain of frames with one share shows as its deepest):\n\n")
		} else {
			b.WriteString(", pprof -top (flat and cumulative):\n\n")
		}
		for _, t := range p.top {
			fmt.Fprintf(&b, "- `%s`\n", t)
		}
		b.WriteString("\n")
	}
	return b.String()
}
