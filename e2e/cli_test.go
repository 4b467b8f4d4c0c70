package e2e

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
)

// TestCLI: the inferq command against a running fleet: a directory
// submitted as one batch with progress bars and --wait, its results
// written to a file holding every job, status of batches and jobs, a
// single file, an archive, and the model list.
func TestCLI(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	dir := t.TempDir()
	scans := filepath.Join(dir, "scans")
	want := map[string]string{}
	for i := 0; i < 60; i++ {
		name := fmt.Sprintf("box-%d/scan-%02d.txt", i%3, i)
		p := filepath.Join(scans, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		body := fmt.Sprintf("scan number %d", i)
		os.WriteFile(p, []byte(body), 0o644)
		want[name] = body
	}
	os.WriteFile(filepath.Join(scans, ".DS_Store"), []byte("finder junk"), 0o644)

	cmd := exec.Command(filepath.Join(binDir, "inferq"), "submit", "--model", "echo", "--wait", "--json", "--progress", "always", scans)
	cmd.Env = append(f.Env(), "INFERQ_URL="+f.URL, "INFERQ_API_KEY="+f.Tenants["globex"].Key)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("inferq submit: %v\n%s", err, stderr.String())
	}
	var b client.Batch
	if err := json.Unmarshal(stdout.Bytes(), &b); err != nil {
		t.Fatalf("submit output %q: %v", stdout.String(), err)
	}
	if !b.Done || b.Jobs != 60 || b.Counts.Succeeded != 60 {
		t.Fatalf("batch after --wait: %+v", b)
	}
	if bars := stderr.String(); !strings.Contains(bars, "upload") || !strings.Contains(bars, "jobs") || !strings.Contains(bars, "60/60") {
		t.Fatalf("progress bars on stderr:\n%s", bars)
	}

	// inferq results BATCH > out.ndjson holds every job, in order.
	out := filepath.Join(dir, "out.ndjson")
	if err := os.WriteFile(out, cli(t, f, "globex", "results", b.ID), 0o644); err != nil {
		t.Fatal(err)
	}
	fh, _ := os.Open(out)
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	seen := map[string]bool{}
	prev := ""
	for sc.Scan() {
		var j client.Job
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("results line %q: %v", sc.Text(), err)
		}
		body, ok := want[j.FileName]
		if !ok || seen[j.FileName] || j.FileName < prev || j.BatchID != b.ID {
			t.Fatalf("results line for %q (after %q) in batch %s", j.FileName, prev, j.BatchID)
		}
		checkEcho(t, &j, []byte(body))
		seen[j.FileName], prev = true, j.FileName
	}
	if len(seen) != len(want) {
		t.Fatalf("results file holds %d jobs, want %d", len(seen), len(want))
	}

	if human := string(cli(t, f, "globex", "status", b.ID)); !strings.Contains(human, "60 succeeded") || !strings.Contains(human, "completed") {
		t.Fatalf("status of the batch:\n%s", human)
	}

	// One file: one job.
	single := filepath.Join(dir, "one.txt")
	os.WriteFile(single, []byte("just one"), 0o644)
	var j client.Job
	if err := json.Unmarshal(cli(t, f, "globex", "submit", "--model", "echo", "--wait", "--json", single), &j); err != nil {
		t.Fatal(err)
	}
	checkEcho(t, &j, []byte("just one"))
	if human := string(cli(t, f, "globex", "status", j.ID)); !strings.Contains(human, "succeeded") || !strings.Contains(human, "one.txt") {
		t.Fatalf("status of the job:\n%s", human)
	}

	// An archive: one batch; status --wait follows it to its end.
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for i := 0; i < 5; i++ {
		w, _ := zw.Create(fmt.Sprintf("z/%d.txt", i))
		fmt.Fprintf(w, "zipped %d", i)
	}
	zw.Close()
	zpath := filepath.Join(dir, "pages.zip")
	os.WriteFile(zpath, zb.Bytes(), 0o644)
	var zbatch client.Batch
	if err := json.Unmarshal(cli(t, f, "globex", "submit", "--model", "echo", "--json", zpath), &zbatch); err != nil {
		t.Fatal(err)
	}
	if zbatch.Jobs != 5 || zbatch.Done {
		t.Fatalf("archive batch: %+v", zbatch)
	}
	if err := json.Unmarshal(cli(t, f, "globex", "status", zbatch.ID, "--wait", "60s", "--json"), &zbatch); err != nil || !zbatch.Done {
		t.Fatalf("archive batch after status --wait: %+v %v", zbatch, err)
	}

	if human := string(cli(t, f, "globex", "models")); !strings.Contains(human, "echo") || !strings.Contains(human, "MAX BATCH") {
		t.Fatalf("models:\n%s", human)
	}
}
