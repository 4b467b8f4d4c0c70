package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/pages"
	"github.com/inferq/inferq/internal/queue"
)

type docResult struct {
	Pages       int    `json:"pages"`
	Text        string `json:"text"`
	PageResults []struct {
		Page   int    `json:"page"`
		Source string `json:"source"`
		Text   string `json:"text"`
		Lines  []struct {
			Text string `json:"text"`
		} `json:"lines"`
	} `json:"page_results"`
}

// TestDocumentsThroughAPI: scanned and digital PDFs and a multi-page TIFF
// read page by page through the whole HTTP path, and hostile documents
// each failing with their own code while the worker keeps serving.
func TestDocumentsThroughAPI(t *testing.T) {
	// Results over 512 bytes go to S3: the scanned documents' do.
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_MAX_PAGES=20", "INFERQ_MAX_INLINE_RESULT=512"}})
	ctx := ctxT(t, 5*time.Minute)
	c := f.client("globex")

	// Scanned pages: text rendered at 28 px embedded at 150 dpi (about
	// 13 pt), read back at the default 150 dpi.
	texts := [][]string{pages.Lines[0], pages.Lines[1], pages.Lines[0][:2]}
	var imgs []image.Image
	var scanned []pages.PDFPage
	for _, tx := range texts {
		img, err := pages.Render(pages.Regular, 28, tx)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
		scanned = append(scanned, pages.PDFPage{Image: img})
	}
	digital := []string{"Quarterly report 2026", "Revenue rose 12% to 4.2 million (EUR)."}
	many := make([]pages.PDFPage, 21)
	for i := range many {
		many[i] = pages.PDFPage{Text: []string{"p"}}
	}
	goodPDF := pages.PDF([]pages.PDFPage{{Text: digital}})
	encrypted := strings.Replace(string(goodPDF), "trailer\n<<", "trailer\n<< /Encrypt << /Filter /Standard /V 1 /R 2 /P -4 /O <"+strings.Repeat("7a", 32)+"> /U <"+strings.Repeat("3c", 32)+"> >> /ID [<"+strings.Repeat("11", 16)+"> <"+strings.Repeat("11", 16)+">]", 1)

	inputs := [][]byte{
		pages.PDF(scanned),
		pages.TIFF(imgs),
		goodPDF,
		pages.PDF([]pages.PDFPage{{Text: digital}, scanned[1]}),
		[]byte("%PDF-1.7\nnot really a PDF at all"),
		// Page 2's box is too large to render at any readable DPI.
		pages.PDF([]pages.PDFPage{scanned[0], {Image: imgs[1], WPt: 20000, HPt: 20000}, scanned[2]}),
	}
	jobs := submitAll(t, ctx, c, "ocr", inputs, "")

	cer := func(name string, r docResult, want [][]string) {
		t.Helper()
		var edits, chars int
		for i, pr := range r.PageResults {
			var got []string
			for _, l := range pr.Lines {
				got = append(got, l.Text)
			}
			e, n := pages.Errors(got, want[i])
			edits, chars = edits+e, chars+n
		}
		rate := float64(edits) / float64(chars)
		t.Logf("%s: %d edits in %d characters: CER %.2f%%", name, edits, chars, 100*rate)
		if rate > 0.02 {
			t.Errorf("%s: CER %.2f%%, want at most 2%%", name, 100*rate)
		}
	}
	read := func(i int, pagesWant int, sources ...string) docResult {
		t.Helper()
		j := jobs[i]
		if j.Status != "succeeded" {
			t.Fatalf("document %d: %s %+v", i, j.Status, j.Error)
		}
		res, err := c.Result(ctx, j)
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var r docResult
		if err := json.Unmarshal(res, &r); err != nil {
			t.Fatalf("document %d: %v in %.300s", i, err, res)
		}
		if r.Pages != pagesWant || len(r.PageResults) != pagesWant {
			t.Fatalf("document %d: %d pages, %d page results, want %d", i, r.Pages, len(r.PageResults), pagesWant)
		}
		var joined []string
		for k, pr := range r.PageResults {
			if pr.Page != k+1 || pr.Source != sources[k] {
				t.Errorf("document %d page result %d: page %d source %q, want page %d source %q", i, k, pr.Page, pr.Source, k+1, sources[k])
			}
			joined = append(joined, pr.Text)
		}
		if r.Text != strings.Join(joined, "\f") {
			t.Errorf("document %d: text %q is not its pages' joined by form feeds", i, r.Text)
		}
		return r
	}
	cer("scanned PDF", read(0, 3, "ocr", "ocr", "ocr"), texts)
	cer("TIFF", read(1, 3, "ocr", "ocr", "ocr"), texts)
	if r := read(2, 1, "text"); r.Text != strings.Join(digital, "\n") {
		t.Errorf("digital PDF: text %q, want exactly %q", r.Text, strings.Join(digital, "\n"))
	}
	mixed := read(3, 2, "text", "ocr")
	if mixed.PageResults[0].Text != strings.Join(digital, "\n") {
		t.Errorf("mixed PDF page 1: %q", mixed.PageResults[0].Text)
	}
	cer("mixed PDF scanned page", docResult{PageResults: mixed.PageResults[1:]}, texts[1:2])
	if j := jobs[4]; j.Status != "failed" || j.Error == nil || j.Error.Code != "undecodable_input" {
		t.Errorf("corrupt document: %s %+v, want failed with undecodable_input", j.Status, j.Error)
	}
	// A page that fails fails the document, naming the page.
	if j := jobs[5]; j.Status != "failed" || j.Error == nil || j.Error.Code != "page_too_large" || !strings.HasPrefix(j.Error.Message, "page 2: ") {
		t.Errorf("document with a page too large: %s %+v, want failed with page_too_large on page 2", j.Status, j.Error)
	}
	// Over the page cap, or encrypted: refused at submit. A presigned
	// upload is not read at submit: its worker fails it with the same
	// code, before it makes any page job.
	for _, h := range []struct {
		data   []byte
		status int
		code   string
	}{{pages.PDF(many), http.StatusRequestEntityTooLarge, "too_many_pages"}, {[]byte(encrypted), http.StatusUnprocessableEntity, "encrypted_document"}} {
		_, err := c.Submit(ctx, client.Submit{Model: "ocr", Input: bytes.NewReader(h.data), ContentType: "application/pdf"})
		wantAPIError(t, h.code+" at submit", err, h.status, h.code)
		j, err := c.SubmitLarge(ctx, "ocr", bytes.NewReader(h.data), int64(len(h.data)), "application/pdf", "doc.pdf")
		if err != nil {
			t.Fatal(err)
		}
		if j, err = c.Wait(ctx, j.ID); err != nil || j.Status != "failed" || j.Error == nil || j.Error.Code != h.code {
			t.Errorf("uploaded %s document: %v %+v, want failed with %s", h.code, err, j, h.code)
		}
		if p, err := c.Get(ctx, j.ID+"-p1", 0); err == nil {
			t.Errorf("a %s document made page jobs: %+v", h.code, p)
		}
	}

	// The worker still serves after the hostile ones; "ocr=force" reads
	// a digital page through OCR.
	j, err := c.Submit(ctx, client.Submit{Model: "ocr", Input: bytes.NewReader(goodPDF), ContentType: "application/pdf; ocr=force"})
	if err != nil {
		t.Fatal(err)
	}
	if j, err = c.Wait(ctx, j.ID); err != nil || j.Status != "succeeded" {
		t.Fatalf("a document after the hostile ones: %v %+v", err, j)
	}
	jobs[2] = j
	cer("digital PDF forced through OCR", read(2, 1, "ocr"), [][]string{digital})

	// A document in a batch is one of its jobs: its pages are not listed,
	// and the batch completes when the document has ended.
	png, err := pages.PNG(pages.Regular, 28, pages.Lines[1])
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "ocr", Files: []client.File{
		{Name: "report.pdf", ContentType: "application/pdf", Reader: bytes.NewReader(inputs[3])},
		{Name: "page.png", ContentType: "image/png", Reader: bytes.NewReader(png)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if b, err = c.WaitBatch(ctx, b.ID, 100*time.Millisecond, nil); err != nil || b.Jobs != 2 || b.Counts.Succeeded != 2 {
		t.Fatalf("batch with a document: %v %+v", err, b)
	}
	rs, err := c.BatchResults(ctx, b.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for rs.Next() {
		listed = append(listed, rs.Job().FileName)
		if rs.Job().FileName == "report.pdf" {
			res, err := c.Result(ctx, rs.Job())
			if err != nil {
				t.Fatal(err)
			}
			var r docResult
			if err := json.Unmarshal(res, &r); err != nil || r.Text != mixed.Text {
				t.Errorf("the batch's document: %v, text %q, want %q", err, r.Text, mixed.Text)
			}
		}
	}
	rs.Close()
	if strings.Join(listed, ",") != "report.pdf,page.png" {
		t.Errorf("the batch lists %v, want its two files and no page", listed)
	}

	// The CLI waits for a document and prints its text, pages apart by a
	// form feed (a stored result is fetched from /output).
	path := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(path, inputs[3], 0o644); err != nil {
		t.Fatal(err)
	}
	out := string(cli(t, f, "globex", "submit", "--model", "ocr", "--wait", "--progress", "always", path))
	if want := mixed.Text + "\n"; out != want {
		t.Errorf("inferq submit --wait printed %q, want %q", out, want)
	}
}

// scannedPDF is a PDF of n scanned pages, alternating pages.Lines[0] and
// [1], and the lines of each page.
func scannedPDF(t *testing.T, n int) ([]byte, [][]string) {
	t.Helper()
	var ps []pages.PDFPage
	var want [][]string
	for i := 0; i < n; i++ {
		lines := pages.Lines[i%2]
		img, err := pages.Render(pages.Regular, 28, lines)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, pages.PDFPage{Image: img})
		want = append(want, lines)
	}
	return pages.PDF(ps), want
}

// checkDocument reads a succeeded document's result and checks its pages
// in order, each read within 2% CER.
func checkDocument(t *testing.T, ctx context.Context, c *client.Client, j *client.Job, want [][]string) {
	t.Helper()
	res, err := c.Result(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	var r docResult
	if err := json.Unmarshal(res, &r); err != nil || r.Pages != len(want) || len(r.PageResults) != len(want) {
		t.Fatalf("result %.300s: %v", res, err)
	}
	var edits, chars int
	for i, pr := range r.PageResults {
		if pr.Page != i+1 {
			t.Fatalf("page result %d is page %d", i, pr.Page)
		}
		e, n := pages.Errors(strings.Split(pr.Text, "\n"), want[i])
		edits, chars = edits+e, chars+n
	}
	if cer := float64(edits) / float64(chars); cer > 0.02 {
		t.Errorf("CER %.2f%%", 100*cer)
	}
}

// pageIDs are the page jobs of a document of n pages.
func pageIDs(doc string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-p%d", doc, i+1)
	}
	return ids
}

// webhookCount counts the deliveries of a document's job.* webhooks.
func webhookCount(rv *fleettest.Receiver, doc string) int {
	n := 0
	for _, r := range rv.Requests() {
		if strings.Contains(string(r.Body), `"id":"`+doc+`"`) {
			n++
		}
	}
	return n
}

// docRun is a scanned document of 8 pages submitted to a test's fleet,
// with a webhook receiver and a watch on every job end.
type docRun struct {
	e    *endings
	hook *fleettest.Receiver
	c    *client.Client
	ctx  context.Context
	j    *client.Job
	want [][]string
}

func submitDocument(t *testing.T, f *fleet) *docRun {
	t.Helper()
	d := &docRun{e: watchEndings(t, f), c: f.client("globex"), ctx: ctxT(t, 4*time.Minute)}
	d.hook = fleettest.NewReceiver(func(int, *http.Request) int { return http.StatusNoContent })
	t.Cleanup(d.hook.Close)
	var data []byte
	data, d.want = scannedPDF(t, 8)
	var err error
	d.j, err = d.c.Submit(d.ctx, client.Submit{Model: "ocr", Input: bytes.NewReader(data), ContentType: "application/pdf", WebhookURL: d.hook.URL})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// endedOnce checks that the document and each of its pages ended once,
// succeeded, and that the document's webhook came once; it returns the
// document as it ended.
func (d *docRun) endedOnce(t *testing.T) *client.Job {
	t.Helper()
	d.e.exactlyOnce(t, d.c, append([]string{d.j.ID}, pageIDs(d.j.ID, len(d.want))...), "succeeded")
	if err := d.hook.WaitFor(d.ctx, func([]fleettest.Received) bool { return webhookCount(d.hook, d.j.ID) >= 1 }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // a second webhook would show by now
	if n := webhookCount(d.hook, d.j.ID); n != 1 {
		t.Errorf("%d webhooks for the document, want 1", n)
	}
	if n := len(d.hook.Requests()); n != 1 {
		t.Errorf("%d webhooks in all, want the document's alone (pages have none)", n)
	}
	j, err := d.c.Get(d.ctx, d.j.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkDocument(t, d.ctx, d.c, j, d.want)
	return j
}

// TestDocumentPagesOnTwoWorkers: the pages of one document are jobs of
// their own, run by both of two workers (the ocr model runs a page a
// batch), and the document ends once, with every page in order and one
// webhook.
func TestDocumentPagesOnTwoWorkers(t *testing.T) {
	f := startFleet(t, fleettest.Options{Workers: 2})
	d := submitDocument(t, f)
	d.endedOnce(t)
	// Each worker counts the jobs it ended: the pages.
	for i, w := range f.Workers {
		n := 0
		for _, l := range metricLines(w.URL) {
			if strings.HasPrefix(l, "inferq_worker_jobs_total{") && strings.Contains(l, `model="ocr"`) {
				var v float64
				fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
				n += int(v)
			}
		}
		t.Logf("worker %d ran %d of the %d pages", i, n, len(d.want))
		if n == 0 {
			t.Errorf("worker %d ran none of the document's pages", i)
		}
	}
}

// TestDocumentWorkerKilled: a worker SIGKILLed while it runs a document's
// pages loses no page and counts none twice: its pages are redelivered to
// the next worker, every page ends once, and the document ends once,
// with every page in order and one webhook.
func TestDocumentWorkerKilled(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_ACK_WAIT=2s"}})
	d := submitDocument(t, f)
	c, ctx, j, want := d.c, d.ctx, d.j, d.want
	// The SSE stream tells the pages as they end.
	req, _ := http.NewRequestWithContext(ctx, "GET", f.URL+"/v1/jobs/"+j.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+f.Tenants["globex"].Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sse := make(chan []string, 1)
	go func() {
		var progress []string
		sc := bufio.NewScanner(resp.Body)
		for ev := ""; sc.Scan(); {
			line := sc.Text()
			if e, ok := strings.CutPrefix(line, "event: "); ok {
				ev = e
			} else if d, ok := strings.CutPrefix(line, "data: "); ok && ev == "progress" {
				progress = append(progress, d)
			}
		}
		sse <- progress
	}()
	// Kill the worker once GET shows a page of the document done.
	for {
		cur, err := c.Get(ctx, j.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Progress != nil && cur.Progress.PagesDone >= 1 {
			if cur.Progress.Pages != len(want) || cur.Status != "running" {
				t.Fatalf("progress %+v of a %s job, want of %d pages while running", *cur.Progress, cur.Status, len(want))
			}
			break
		}
		if cur.Terminal() {
			t.Fatalf("the document ended (%s) before its progress showed", cur.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.Workers[0].Signal(syscall.SIGKILL)
	f.Workers[0].Wait(10 * time.Second)
	if _, err := f.StartWorker(); err != nil {
		t.Fatal(err)
	}
	j = d.endedOnce(t)
	if j.Progress != nil {
		t.Errorf("an ended document shows progress %+v", *j.Progress)
	}
	again := 0
	for _, id := range pageIDs(j.ID, len(want)) {
		if p, err := c.Get(ctx, id, 0); err == nil && p.Attempts > 1 {
			again++
		}
	}
	t.Logf("%d of %d pages ran again after the kill", again, len(want))
	select {
	case progress := <-sse:
		for _, ev := range progress {
			var e struct{ Progress client.Progress }
			if err := json.Unmarshal([]byte(ev), &e); err != nil || e.Progress.Pages != len(want) || e.Progress.PagesDone < 1 || e.Progress.PagesDone > len(want) {
				t.Errorf("SSE progress event %s", ev)
			}
		}
		if len(progress) == 0 {
			t.Error("no SSE progress events")
		}
	case <-time.After(30 * time.Second):
		t.Error("the SSE stream did not end with the document")
	}
}

// TestDocumentCanceled: a document canceled while its pages run ends
// canceled, and so do its pages not yet run, at once: no page ends after
// the cancel, and the next job on the same model runs.
func TestDocumentCanceled(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	c := f.client("globex")
	ctx := ctxT(t, 3*time.Minute)
	data, _ := scannedPDF(t, 30)
	j, err := c.Submit(ctx, client.Submit{Model: "ocr", Input: bytes.NewReader(data), ContentType: "application/pdf"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		cur, err := c.Get(ctx, j.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Progress != nil && cur.Progress.PagesDone >= 1 {
			break
		}
		if cur.Terminal() {
			t.Fatalf("the document ended (%s) before its progress showed", cur.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cj, err := c.Cancel(ctx, j.ID); err != nil || cj.Status != "canceled" {
		t.Fatalf("cancel: %v %+v", err, cj)
	}
	count := func() map[string]int {
		by := map[string]int{}
		for _, id := range pageIDs(j.ID, 30) {
			p, err := c.Get(ctx, id, 0)
			if err != nil {
				t.Fatal(err)
			}
			by[p.Status]++
		}
		return by
	}
	// The cancel answered once the pages were canceled: every page has
	// ended, those not run canceled (a worker holds at most two batches
	// of a page at a time, so some are left to cancel whatever the load).
	after := count()
	if after["succeeded"]+after["canceled"] != 30 || after["canceled"] == 0 {
		t.Fatalf("pages right after the cancel: %v", after)
	}
	page, err := pages.PNG(pages.Regular, 28, pages.Lines[1])
	if err != nil {
		t.Fatal(err)
	}
	next := submitAll(t, ctx, c, "ocr", [][]byte{page}, "image/png")
	if next[0].Status != "succeeded" {
		t.Fatalf("the next job: %s %+v", next[0].Status, next[0].Error)
	}
	if j, err = c.Get(ctx, j.ID, 0); err != nil || j.Status != "canceled" {
		t.Fatalf("the document after its cancel: %v %+v", err, j)
	}
	if later := count(); later["succeeded"] != after["succeeded"] {
		t.Fatalf("pages ended after the cancel: %v, then %v", after, later)
	}
	t.Logf("canceled after page 1: pages %v", after)
}

// TestDocumentKilledMidFanOut: a worker killed while it fanned a
// document out — the document running, its page records made, half of
// them published, its message not acked — is played by the test itself,
// on a fleet whose first worker starts after: the document's message
// redelivered to that worker makes no page twice and publishes them all
// again (JetStream or the scheduler drops the duplicates), every page
// ends once, the document ends once, and the tenant's count of unfinished
// jobs comes back to zero (a page made or counted twice would leave it
// above).
func TestDocumentKilledMidFanOut(t *testing.T) {
	f := startFleet(t, fleettest.Options{Workers: -1, Env: []string{"INFERQ_INLINE_INPUT_BYTES=0"}})
	e := watchEndings(t, f)
	c := f.client("globex")
	ctx := ctxT(t, 4*time.Minute)
	const n = 12
	ps := make([]pages.PDFPage, n)
	for i := range ps {
		ps[i] = pages.PDFPage{Text: []string{fmt.Sprintf("page %d", i+1)}}
	}
	j, err := c.Submit(ctx, client.Submit{Model: "ocr", Input: bytes.NewReader(pages.PDF(ps)), ContentType: "application/pdf"})
	if err != nil {
		t.Fatal(err)
	}
	// The dead worker's part: the document running, every page made,
	// half of them published.
	rdb := redis.NewClient(&redis.Options{Addr: f.back.Redis.Addr})
	defer rdb.Close()
	store := jobs.NewStore(rdb, time.Hour)
	for _, to := range []jobs.State{jobs.Scheduled, jobs.Running} {
		if _, err := store.Transition(ctx, j.ID, "globex", to, jobs.Update{CountAttempt: to == jobs.Running}); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := store.Get(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	msg := jobs.MessageFor(rec)
	pgs := jobs.Pages(msg, n, func(i int) string { return fmt.Sprintf("application/pdf; page=%d", i) })
	if made, err := store.CreatePages(ctx, rec, pgs); err != nil || made != n {
		t.Fatalf("made %d pages: %v", made, err)
	}
	nc, err := nats.Connect(f.back.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := queue.Submit(ctx, js, pgs[:n/2], 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Its message, which JetStream gives again to the next worker.
	if err := queue.Publish(ctx, js, queue.RunSubject("ocr"), j.ID, msg.Encode()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.StartWorker(); err != nil {
		t.Fatal(err)
	}
	e.exactlyOnce(t, c, append([]string{j.ID}, pageIDs(j.ID, n)...), "succeeded")
	if j, err = c.Get(ctx, j.ID, 0); err != nil {
		t.Fatal(err)
	}
	if j.Attempts != 2 {
		t.Errorf("the document ran %d times, want twice (the dead worker's, and the redelivery)", j.Attempts)
	}
	res, err := c.Result(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	var r docResult
	if err := json.Unmarshal(res, &r); err != nil || r.Pages != n {
		t.Fatalf("result %.300s: %v", res, err)
	}
	for i, pr := range r.PageResults {
		if want := fmt.Sprintf("page %d", i+1); pr.Page != i+1 || pr.Text != want || pr.Source != "text" {
			t.Fatalf("page result %d: %+v, want %q from the text layer", i, pr, want)
		}
	}
	if u, err := store.Unfinished(ctx, "globex"); err != nil || u != 0 {
		t.Fatalf("unfinished jobs of the tenant after the document ended: %d, %v", u, err)
	}
	for _, id := range pageIDs(j.ID, n) {
		p, err := c.Get(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.Attempts != 1 {
			t.Errorf("page %s ran %d times, want once", id, p.Attempts)
		}
	}
}
