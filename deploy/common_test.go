package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/inferq/inferq/internal/config"
)

// root is the repository root: this file's directory's parent.
func root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Dir(filepath.Dir(file))
}

func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// configEnv is every INFERQ_* name the fleet's processes read: the env
// tags of config.Config, INFERQ_CONFIG (the YAML file), and the names the
// processes' own code reads straight from the environment (os.Getenv in
// cmd/producer, cmd/scheduler, cmd/worker and internal/, less the test
// and benchmark helpers), such as a setting that has no config field yet.
func configEnv(t testing.TB) map[string]bool {
	t.Helper()
	names := map[string]bool{"INFERQ_CONFIG": true}
	ct := reflect.TypeOf(config.Config{})
	for i := 0; i < ct.NumField(); i++ {
		if env := ct.Field(i).Tag.Get("env"); env != "" {
			names[env] = true
		}
	}
	re := regexp.MustCompile(`os\.(?:Getenv|LookupEnv)\("(INFERQ_[A-Z0-9_]+)"\)`)
	skip := map[string]bool{"internal/fleettest": true, "internal/bench": true}
	for _, dir := range []string{"cmd/producer", "cmd/scheduler", "cmd/worker", "internal"} {
		err := filepath.WalkDir(filepath.Join(root(t), dir), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root(t), path)
			if d.IsDir() && skip[filepath.ToSlash(rel)] {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllSubmatch(b, -1) {
				names[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return names
}

var inferqName = regexp.MustCompile(`\bINFERQ_[A-Z0-9_]+\b`)

// unknownEnv lists the INFERQ_* names in text that no process reads.
func unknownEnv(t testing.TB, text string) []string {
	known := configEnv(t)
	seen := map[string]bool{}
	var out []string
	for _, n := range inferqName.FindAllString(text, -1) {
		if !known[n] && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// sourceMetrics is every metric name the code defines (Name: "inferq_..."
// in client_golang options, and prometheus.NewDesc("inferq_...")), read
// from the non-test Go files, so that metrics colleagues add show up here.
func sourceMetrics(t testing.TB) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(inferq_[a-z0-9_]+)"`)
	out := map[string]bool{}
	for _, dir := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root(t), dir), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllSubmatch(b, -1) {
				out[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) == 0 {
		t.Fatal("found no metric definitions in internal/ and cmd/: has the way metrics are declared changed?")
	}
	return out
}

// metricRefs lists the inferq_ metric names an expression uses, with the
// histogram suffixes taken off.
func metricRefs(expr string) []string {
	re := regexp.MustCompile(`\binferq_[a-z0-9_]+`)
	var out []string
	for _, m := range re.FindAllString(expr, -1) {
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if strings.HasSuffix(m, suf) {
				m = strings.TrimSuffix(m, suf)
				break
			}
		}
		out = append(out, m)
	}
	return out
}

// helmPath finds helm: the setup script's pinned build first, then PATH.
func helmPath(t testing.TB) string {
	t.Helper()
	cache := os.Getenv("INFERQ_CACHE")
	if cache == "" {
		cache = filepath.Join(root(t), ".cache")
	}
	if p := filepath.Join(cache, "bin", "helm"); isExec(p) {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	t.Fatal("helm is missing: run make deps-test (scripts/setup.sh --with-helm installs the pinned helm into .cache/bin)")
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// helm runs helm with its own empty config, cache and data folders, so
// that no repository or plugin of the machine's user changes the result.
func helm(t testing.TB, args ...string) string {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmPath(t), args...)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// object is one parsed Kubernetes manifest (or any YAML mapping).
type object = map[string]any

// parseDocs splits multi-document YAML into its mappings.
func parseDocs(t testing.TB, text string) []object {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(text))
	var out []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("rendered YAML does not parse: %v", err)
		}
		if o != nil {
			out = append(out, o)
		}
	}
}

// at walks a path of mapping keys and list indexes ("spec", "template",
// ...); nil when a step is missing.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := at(v, path...).(string)
	return s
}

func list(v any, path ...any) []any {
	l, _ := at(v, path...).([]any)
	return l
}

func mapping(v any, path ...any) map[string]any {
	m, _ := at(v, path...).(map[string]any)
	return m
}

// num reads a YAML number (int or float) as an int; ok is false when the
// value is missing or not a number.
func num(v any, path ...any) (int, bool) {
	switch n := at(v, path...).(type) {
	case int:
		return n, true
	case float64:
		return int(n), true
	}
	return 0, false
}
