package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/tenants"
)

// dockerStage is one stage of the Dockerfile: its name and instructions.
type dockerStage struct {
	name  string
	lines []string
}

// dockerStages parses the Dockerfile into stages, joining continued lines.
func dockerStages(t *testing.T) []dockerStage {
	t.Helper()
	var stages []dockerStage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			f := strings.Fields(line)
			name := ""
			if len(f) >= 4 && strings.EqualFold(f[2], "AS") {
				name = f[3]
			}
			stages = append(stages, dockerStage{name: name})
		}
		if len(stages) > 0 {
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, "Dockerfile")))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

func dockerTargets(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, s := range dockerStages(t) {
		out[s.name] = true
	}
	return out
}

// The images the Dockerfile must make, and whether each has a
// HEALTHCHECK (the CLI is no service).
var dockerImages = map[string]bool{
	"producer": true, "scheduler": true, "worker": true, "worker-cuda": true,
	"nats": true, "minio": true, "cli": false,
}

func TestDockerfile(t *testing.T) {
	stages := map[string]dockerStage{}
	for _, s := range dockerStages(t) {
		stages[s.name] = s
	}
	for img, health := range dockerImages {
		s, ok := stages[img]
		if !ok {
			t.Errorf("the Dockerfile has no target %s", img)
			continue
		}
		var user string
		hasHealth := false
		for _, l := range s.lines {
			switch {
			case strings.HasPrefix(l, "USER "):
				user = strings.TrimSpace(strings.TrimPrefix(l, "USER "))
			case strings.HasPrefix(l, "HEALTHCHECK "):
				hasHealth = true
			}
		}
		// Numeric, so that Kubernetes can check runAsNonRoot.
		if user != "65532:65532" {
			t.Errorf("image %s runs as USER %q, want 65532:65532", img, user)
		}
		if health && !hasHealth {
			t.Errorf("image %s has no HEALTHCHECK", img)
		}
	}
	text := string(readFile(t, "Dockerfile"))
	checkDockerBuilds(t, stages)
	for _, m := range regexp.MustCompile(`\./(cmd/[a-z0-9]+|deploy/[a-z0-9]+)`).FindAllStringSubmatch(text, -1) {
		if _, err := os.Stat(filepath.Join(root(t), m[1])); err != nil {
			t.Errorf("the Dockerfile builds ./%s, which does not exist", m[1])
		}
	}
	// The pins equal the setup script's, so images and tests run the same
	// ONNX Runtime, OCR models, NATS and MinIO.
	setup := string(readFile(t, "scripts/setup.sh"))
	for _, name := range []string{"NATS_SERVER_VERSION", "MINIO_VERSION", "ORT_NPM", "ORT_TGZ_SHA256", "ORT_LIB_SHA256", "OCR_NPM", "OCR_TGZ_SHA256"} {
		want := regexp.MustCompile(`(?m)^` + name + `=(\S+)$`).FindStringSubmatch(setup)
		got := regexp.MustCompile(`(?m)^ARG ` + name + `=(\S+)$`).FindStringSubmatch(text)
		switch {
		case want == nil:
			t.Errorf("scripts/setup.sh does not set %s", name)
		case got == nil:
			t.Errorf("the Dockerfile has no ARG %s", name)
		case got[1] != want[1]:
			t.Errorf("Dockerfile ARG %s=%s, scripts/setup.sh has %s", name, got[1], want[1])
		}
	}
	ignore := string(readFile(t, ".dockerignore"))
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "internal", "client", "deploy", "deploy/healthcheck"} {
		if regexp.MustCompile(`(?m)^/?` + regexp.QuoteMeta(needed) + `/?$`).MatchString(ignore) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", needed)
		}
	}
}

// checkDockerBuilds: the worker is built with cgo; every binary built
// with CGO_ENABLED=0 builds without cgo (go list fails on onnxruntime_go
// otherwise) and only static binaries go on the static image.
func checkDockerBuilds(t *testing.T, stages map[string]dockerStage) {
	t.Helper()
	build := regexp.MustCompile(`CGO_ENABLED=([01]) go build (?:-\S+ (?:'[^']*' )?)*-o (\S+) ((?:\./[a-z0-9/]+ ?)+)`)
	cgo := map[string]bool{} // binary name -> built with cgo
	pkgOf := map[string]string{}
	for _, l := range stages["gobuild"].lines {
		for _, m := range build.FindAllStringSubmatch(l, -1) {
			for _, pkg := range strings.Fields(m[3]) {
				bin := filepath.Base(pkg)
				if !strings.HasSuffix(m[2], "/") {
					bin = filepath.Base(m[2])
				}
				cgo[bin] = m[1] == "1"
				pkgOf[bin] = pkg
			}
		}
	}
	if len(cgo) == 0 {
		t.Fatal("found no go build lines in the gobuild stage")
	}
	if on, ok := cgo["worker"]; !ok || !on {
		t.Error("the worker must be built with CGO_ENABLED=1 (onnxruntime_go)")
	}
	for bin, on := range cgo {
		if bin == "worker" {
			continue
		}
		needs, err := needsCgo(t, pkgOf[bin])
		switch {
		case err != nil:
			t.Errorf("go list %s: %v", pkgOf[bin], err)
		case !on && needs != "":
			t.Errorf("the Dockerfile builds %s with CGO_ENABLED=0, but it imports %s, which needs cgo", pkgOf[bin], needs)
		case on && needs == "":
			t.Logf("note: %s builds without cgo now; the Dockerfile may build it static and put its image on STATIC_IMAGE", pkgOf[bin])
		}
	}
	copyBin := regexp.MustCompile(`/out/([a-z0-9-]+)`)
	for name, s := range stages {
		if len(s.lines) == 0 || !strings.Contains(s.lines[0], "${STATIC_IMAGE}") {
			continue
		}
		for _, l := range s.lines {
			if !strings.HasPrefix(l, "COPY --from=gobuild ") {
				continue
			}
			for _, m := range copyBin.FindAllStringSubmatch(l, -1) {
				if on, built := cgo[m[1]]; built && on {
					t.Errorf("image %s is distroless/static but carries %s, built with cgo (it needs glibc)", name, m[1])
				}
			}
		}
	}
}

// needsCgo names the dependencies of pkg that have no Go files without
// cgo (all their files import "C"), or "" when pkg builds with
// CGO_ENABLED=0. (go list reports no error for them; go build would.)
func needsCgo(t *testing.T, pkg string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if and (not .GoFiles) .IgnoredGoFiles}}{{.ImportPath}} {{end}}", pkg)
	cmd.Dir, cmd.Env = root(t), append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// dockerEngine reports why Docker cannot build here, or "" when it can.
func dockerEngine() string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "no docker command"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("docker info: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := exec.CommandContext(ctx, "docker", "compose", "version").Run(); err != nil {
		return "no docker compose plugin"
	}
	return ""
}

// TestDockerImagesAndComposeSmoke builds the images and runs the compose
// fleet: one echo job from submit to result. It needs a Docker engine
// with the compose plugin; where there is none it says so and skips (the
// one skip in this package: everything above runs without Docker).
func TestDockerImagesAndComposeSmoke(t *testing.T) {
	if why := dockerEngine(); why != "" {
		t.Skipf("Docker engine unavailable (%s): images not built and the compose smoke run not done here", why)
	}
	if testing.Short() {
		t.Skip("-short: skipping the image builds and the compose smoke run")
	}
	dir := t.TempDir()
	key, stored := tenants.NewKey()
	tenantsFile := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(tenantsFile, []byte("tenants:\n  - name: smoke\n    tier: premium\n    api_keys: [\""+stored+"\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("inferq-smoke-%d", os.Getpid())
	env := append(os.Environ(),
		"COMPOSE_PROJECT_NAME="+project,
		"IMAGE_TAG=smoke",
		"S3_SECRET_KEY=smoke-secret-key-0123456789",
		"TENANTS_FILE="+tenantsFile,
		"PRODUCER_PORT=0",
		"NATS_PORT=0", "NATS_MONITOR_PORT=0", "REDIS_PORT=0", "MINIO_PORT=0", "MINIO_CONSOLE_PORT=0",
	)
	run := func(timeout time.Duration, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", args...)
		cmd.Dir, cmd.Env = root(t), env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(time.Minute, "compose", "config", "--quiet")
	t.Cleanup(func() {
		cmd := exec.Command("docker", "compose", "down", "--volumes", "--remove-orphans")
		cmd.Dir, cmd.Env = root(t), env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
	})
	run(40*time.Minute, "compose", "build")
	run(5*time.Minute, "compose", "up", "--detach", "--wait")
	port := strings.TrimSpace(run(time.Minute, "compose", "port", "producer", "8080"))
	_, p, _ := strings.Cut(port, ":")
	c := client.New("http://127.0.0.1:"+p, key)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	job, err := c.SubmitBytes(ctx, "echo", []byte("hello from compose"), "application/octet-stream")
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	job, err = c.Wait(ctx, job.ID)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	if job.Status != "succeeded" {
		t.Fatalf("job %s ended %s: %+v", job.ID, job.Status, job.Error)
	}
}
