package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/models/zoo"
	"github.com/inferq/inferq/internal/pages"
)

type topkResult struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
	Top   []struct {
		Label string  `json:"label"`
		Score float64 `json:"score"`
	} `json:"top"`
}

// digitPNG draws a UCI digit as a size x size gray PNG.
func digitPNG(t *testing.T, d zoo.Digit, size int, darkOnLight bool) []byte {
	b, err := d.PNG(size, darkOnLight)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// submitAll submits the inputs with a few at a time in flight, waits for
// every job, and returns them in input order.
func submitAll(t *testing.T, ctx context.Context, c *client.Client, model string, inputs [][]byte, contentType string) []*client.Job {
	t.Helper()
	out := make([]*client.Job, len(inputs))
	errs := make(chan error, len(inputs))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, in := range inputs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			j, err := c.Submit(ctx, client.Submit{Model: model, Input: bytes.NewReader(in), ContentType: contentType})
			if err != nil {
				errs <- err
				return
			}
			id := j.ID
			if j, err = c.Wait(ctx, id); err != nil {
				last, _ := c.Get(context.Background(), id, 0)
				errs <- fmt.Errorf("job %s did not end: %w (last seen %+v)", id, err, last)
				return
			}
			out[i] = j
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// TestDigitsAccuracy: held-out UCI digits, drawn as upscaled PNGs in both
// polarities, classified through the whole HTTP path.
func TestDigitsAccuracy(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	ctx := ctxT(t, 3*time.Minute)
	if os.Getenv("E2E_DIGITS") != "" {
		ctx = ctxT(t, 40*time.Second)
	}
	digits, labels, err := zoo.DigitsHeldOut()
	if err != nil {
		t.Fatal(err)
	}
	var inputs [][]byte
	var want []string
	if n := os.Getenv("E2E_DIGITS"); n != "" {
		k, _ := strconv.Atoi(n)
		digits = digits[:k]
	}
	for i, d := range digits {
		for _, dark := range []bool{true, false} {
			inputs = append(inputs, digitPNG(t, d, 32+8*(i%5), dark))
			want = append(want, string(rune('0'+labels[i])))
		}
	}
	jobs := submitAll(t, ctx, f.client("globex"), "digits", inputs, "image/png")
	right := 0
	for i, j := range jobs {
		if j.Status != "succeeded" {
			t.Fatalf("job %d: %s %+v", i, j.Status, j.Error)
		}
		var r topkResult
		if err := json.Unmarshal(j.Result, &r); err != nil || len(r.Top) != 3 {
			t.Fatalf("result %s: %v", j.Result, err)
		}
		if r.Label == want[i] {
			right++
		}
	}
	acc := float64(right) / float64(len(jobs))
	t.Logf("digits: %d/%d right through the API = %.2f%%", right, len(jobs), 100*acc)
	if acc < 0.95 {
		t.Fatalf("accuracy %.2f%%, want at least 95%%", 100*acc)
	}
}

// TestOCRThroughAPI: rendered pages, clean and spoilt as scans spoil
// them, read through the whole HTTP path.
func TestOCRThroughAPI(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	ctx := ctxT(t, 5*time.Minute)
	type page struct {
		ttf  []byte
		size float64
		text []string
		scan pages.Scan
	}
	ps := []page{
		{pages.Regular, 20, pages.Lines[0], pages.Plain}, {pages.Mono, 20, pages.Lines[1], pages.Plain},
		{pages.Regular, 28, pages.Lines[1], pages.Plain}, {pages.Mono, 28, pages.Lines[0], pages.Plain},
		{pages.Regular, 40, pages.Lines[0], pages.Plain}, {pages.Mono, 40, pages.Lines[1], pages.Plain},
		// A small noisy set: the issue-15 marks of a Chinese-first
		// recognizer (case twins, full-width punctuation, 0 for o) on
		// JPEG-damaged, blurred, faded and skewed scans.
		{pages.Regular, 18, pages.NoisyLines[0], pages.JPEG(30)},
		{pages.Mono, 18, pages.NoisyLines[1], pages.Chain(pages.Blur, pages.JPEG(40))},
		{pages.Regular, 22, pages.NoisyLines[1], pages.Chain(pages.LowContrast, pages.JPEG(35))},
		{pages.Mono, 22, pages.NoisyLines[0], pages.Chain(pages.Rotate(1.5), pages.JPEG(40))},
	}
	var inputs [][]byte
	for _, p := range ps {
		img, err := pages.Render(p.ttf, p.size, p.text)
		if err != nil {
			t.Fatal(err)
		}
		spoilt, err := p.scan(img)
		if err != nil {
			t.Fatal(err)
		}
		// PNG keeps what the JPEG round trip did to the page.
		var b bytes.Buffer
		if err := png.Encode(&b, spoilt); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, b.Bytes())
	}
	jobs := submitAll(t, ctx, f.client("globex"), "ocr", inputs, "image/png")
	var edits, chars int
	for i, j := range jobs {
		if j.Status != "succeeded" {
			t.Fatalf("page %d: %s %+v", i, j.Status, j.Error)
		}
		var r struct {
			Text  string `json:"text"`
			Lines []struct {
				Text  string    `json:"text"`
				Score float64   `json:"score"`
				Box   [4][2]int `json:"box"`
			} `json:"lines"`
		}
		if err := json.Unmarshal(j.Result, &r); err != nil {
			t.Fatal(err)
		}
		var got []string
		for k, l := range r.Lines {
			got = append(got, l.Text)
			if l.Score <= 0 || l.Score > 1 || (k > 0 && l.Box[0][1] <= r.Lines[k-1].Box[0][1]) {
				t.Errorf("page %d line %d: score %v box %v (lines run top to bottom)", i, k, l.Score, l.Box)
			}
		}
		if r.Text != strings.Join(got, "\n") {
			t.Errorf("page %d: text %q is not its lines joined", i, r.Text)
		}
		e, n := pages.Errors(got, ps[i].text)
		if e > 0 {
			t.Logf("page %d: %d edits: %q", i, e, got)
		}
		edits += e
		chars += n
	}
	cer := float64(edits) / float64(chars)
	t.Logf("ocr: %d edits in %d characters through the API: CER %.2f%%", edits, chars, 100*cer)
	if cer > 0.03 {
		t.Fatalf("character error rate %.2f%%, want at most 3%%", 100*cer)
	}
}

// TestBadInputInBatch: one corrupt image among good ones fails alone, with
// its code; content the model cannot take is refused at submit.
func TestBadInputInBatch(t *testing.T) {
	f := startFleet(t, fleettest.Options{Workers: -1})
	ctx := ctxT(t, 2*time.Minute)
	c := f.client("globex")
	digits, labels, _ := zoo.DigitsHeldOut()
	var ids []string
	for i := 0; i < 10; i++ {
		j, err := c.Submit(ctx, client.Submit{Model: "digits", Input: bytes.NewReader(digitPNG(t, digits[i], 40, true)), ContentType: "image/png"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
		if i == 4 {
			bad := digitPNG(t, digits[0], 40, true)
			j, err := c.Submit(ctx, client.Submit{Model: "digits", Input: bytes.NewReader(bad[:len(bad)/2]), ContentType: "image/png"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
		}
	}
	// All eleven wait in the queue; one worker takes them as one batch.
	if _, err := f.StartWorker(); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		j, err := c.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			if j.Status != "failed" || j.Error == nil || j.Error.Code != "invalid_image" {
				t.Fatalf("corrupt input: %s %+v, want failed invalid_image", j.Status, j.Error)
			}
			continue
		}
		k := i
		if i > 5 {
			k = i - 1
		}
		var r topkResult
		_ = json.Unmarshal(j.Result, &r)
		if j.Status != "succeeded" || r.Label != string(rune('0'+labels[k])) {
			t.Fatalf("good input %d: %s %s, want label %d", i, j.Status, j.Result, labels[k])
		}
	}
	_, err := c.Submit(ctx, client.Submit{Model: "digits", Input: strings.NewReader("not an image"), ContentType: "text/plain"})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 415 || e.Code != "unsupported_content_type" {
		t.Fatalf("text to an image model: %v, want 415 unsupported_content_type", err)
	}
}

// TestResNetJob: an ImageNet-sized photo through resnet18 answers top-5.
func TestResNetJob(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	ctx := ctxT(t, 2*time.Minute)
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := 0; y < 240; y++ {
		for x := 0; x < 320; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, nil)
	j, err := f.client("acme").Submit(ctx, client.Submit{Model: "resnet18", Input: &b, ContentType: "image/jpeg"})
	if err != nil {
		t.Fatal(err)
	}
	if j, err = f.client("acme").Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	var r topkResult
	if err := json.Unmarshal(j.Result, &r); err != nil || j.Status != "succeeded" || len(r.Top) != 5 || !strings.HasPrefix(r.Label, "class_") {
		t.Fatalf("resnet18: %s %s %+v", j.Status, j.Result, j.Error)
	}
	sum := 0.0
	for k, c := range r.Top {
		sum += c.Score
		if k > 0 && c.Score > r.Top[k-1].Score {
			t.Fatalf("top-5 not in order: %+v", r.Top)
		}
	}
	if sum <= 0 || sum > 1.0001 {
		t.Fatalf("softmax scores sum to %v", sum)
	}
}

// TestModelVersionSwap: a new version written while jobs run is picked up
// without a restart; no job fails, each records the version it ran on.
func TestModelVersionSwap(t *testing.T) {
	dir := t.TempDir()
	if err := writeSlowModel(dir, "slow", "1", 40); err != nil {
		t.Fatal(err)
	}
	f := startFleet(t, fleettest.Options{ModelsDir: dir, Env: []string{"INFERQ_MODELS_REFRESH=200ms"}})
	ctx := ctxT(t, 3*time.Minute)
	c := f.client("globex")
	var ids []string
	submit := func(n int) {
		for i := 0; i < n; i++ {
			j, err := c.Submit(ctx, client.Submit{Model: "slow", Input: strings.NewReader("v")})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
		}
	}
	submit(20)
	tmp := filepath.Join(dir, ".staging")
	if err := writeSlowModel(tmp, "slow", "2", 40); err != nil {
		t.Fatal(err)
	}
	// Install atomically, as an operator (or the zoo) does: rename.
	if err := os.Rename(filepath.Join(tmp, "slow", "2"), filepath.Join(dir, "slow", "2")); err != nil {
		t.Fatal(err)
	}
	submit(20)
	versions := map[string]int{}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		last, err := c.Wait(ctx, ids[len(ids)-1])
		if err != nil {
			t.Fatal(err)
		}
		if last.ModelVersion == "2" || time.Now().After(deadline) {
			break
		}
		submit(5) // until the new version shows
	}
	for _, id := range ids {
		j, err := c.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != "succeeded" {
			t.Fatalf("job %s: %s %+v", id, j.Status, j.Error)
		}
		versions[j.ModelVersion]++
	}
	t.Logf("versions run: %v", versions)
	if versions["1"] == 0 || versions["2"] == 0 || len(versions) != 2 {
		t.Fatalf("versions %v: want jobs on both 1 and 2 and nothing else", versions)
	}
}

// TestLargeResultStoredInS3: a result over the inline limit is stored in
// S3 and served by GET /v1/jobs/<id>/output to its tenant only.
func TestLargeResultStoredInS3(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_MAX_INLINE_RESULT=256"}})
	ctx := ctxT(t, 2*time.Minute)
	page, err := pages.PNG(pages.Regular, 28, pages.Lines[1])
	if err != nil {
		t.Fatal(err)
	}
	c := f.client("acme")
	j, err := c.Submit(ctx, client.Submit{Model: "ocr", Input: bytes.NewReader(page), ContentType: "image/png"})
	if err != nil {
		t.Fatal(err)
	}
	if j, err = c.Wait(ctx, j.ID); err != nil || j.Status != "succeeded" {
		t.Fatalf("ocr job: %v %+v", err, j)
	}
	var ref struct {
		Stored    bool   `json:"stored"`
		Bytes     int    `json:"bytes"`
		OutputURL string `json:"output_url"`
	}
	if err := json.Unmarshal(j.Result, &ref); err != nil || !ref.Stored || ref.OutputURL != "/v1/jobs/"+j.ID+"/output" || ref.Bytes <= 256 {
		t.Fatalf("result %s: want a pointer to the stored output", j.Result)
	}
	get := func(key string) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, "GET", f.URL+ref.OutputURL, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	st, body := get(f.Tenants["acme"].Key)
	var out struct {
		Lines []struct{ Text string } `json:"lines"`
	}
	if st != 200 || len(body) != ref.Bytes || json.Unmarshal(body, &out) != nil || len(out.Lines) != len(pages.Lines[1]) {
		t.Fatalf("output: %d, %d bytes (want %d): %.200s", st, len(body), ref.Bytes, body)
	}
	if st, _ := get(f.Tenants["globex"].Key); st != 404 {
		t.Fatalf("another tenant's output: %d, want 404", st)
	}
}
