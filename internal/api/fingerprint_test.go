package api

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

func sumOf(endpoint string, sub *submission, files ...[2]string) string {
	fp := newFingerprint()
	for _, f := range files {
		_, _ = io.Copy(fp.file(f[0], "text/plain"), strings.NewReader(f[1]))
		fp.end()
	}
	return fp.sum(endpoint, sub)
}

func TestFingerprint(t *testing.T) {
	base := func() *submission {
		return &submission{model: "echo", webhookURL: "https://example.com/h", metadata: json.RawMessage(`{"a":1}`)}
	}
	a := sumOf("POST /v1/jobs", base(), [2]string{"x.txt", "hello"})
	if a != sumOf("POST /v1/jobs", base(), [2]string{"x.txt", "hello"}) {
		t.Fatal("the same request fingerprints differently")
	}
	other := map[string]string{
		"endpoint":    sumOf("POST /v1/batches", base(), [2]string{"x.txt", "hello"}),
		"bytes":       sumOf("POST /v1/jobs", base(), [2]string{"x.txt", "hellO"}),
		"name":        sumOf("POST /v1/jobs", base(), [2]string{"y.txt", "hello"}),
		"split":       sumOf("POST /v1/jobs", base(), [2]string{"x.txt", "hel"}, [2]string{"lo", ""}),
		"model":       sumOf("POST /v1/jobs", func() *submission { s := base(); s.model = "digits"; return s }(), [2]string{"x.txt", "hello"}),
		"deadline":    sumOf("POST /v1/jobs", func() *submission { s := base(); s.deadline = time.Unix(1, 0); return s }(), [2]string{"x.txt", "hello"}),
		"webhook":     sumOf("POST /v1/jobs", func() *submission { s := base(); s.webhookURL = ""; return s }(), [2]string{"x.txt", "hello"}),
		"jobWebhooks": sumOf("POST /v1/jobs", func() *submission { s := base(); s.jobWebhooks = true; return s }(), [2]string{"x.txt", "hello"}),
		"upload":      sumOf("POST /v1/jobs", func() *submission { s := base(); s.uploadID = "u_1"; return s }()),
	}
	for what, s := range other {
		if s == a {
			t.Errorf("a request with another %s fingerprints the same", what)
		}
	}
}
