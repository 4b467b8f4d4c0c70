package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/pages"
	"github.com/inferq/inferq/internal/tenants"
)

// The web console (/ui/) in a real headless Chromium against a real
// fleet: sign in, upload an archive from the page and watch its progress
// reach 100 %, see an OCR job's boxes drawn over its page, a tenant kept
// out of another's batch, an action without its CSRF token refused, and
// the operator's fleet view showing a queue grow, live, while the only
// worker is stopped. With INFERQ_SCREENSHOTS=<dir> (relative to the
// repository) it also writes a screenshot of each page at 1280x800 and at
// a phone's 390x844 there (docs/console holds the committed ones).

// chromium finds Debian's chromium, or fails the test saying how to get it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the console tests drive a headless Chromium and none is installed: " +
		"`apt-get install -y --no-install-recommends chromium` (scripts/setup.sh does it when run as root)")
	return ""
}

// browser starts one headless Chromium for the test.
func browser(t *testing.T, ctx context.Context, exe string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 800))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// tab opens a tab in a browser context of its own (its own cookies).
func tab(t *testing.T, b context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first action on a context opens its tab and ties the tab to
	// the context it runs with: open it here, on ctx, so that do's
	// timeouts do not close it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// do runs steps, within 90 s; a failure shows where the page was.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, where(ctx))
	}
	t.Logf("%s: done", what)
}

// where says which page the tab shows, and its text.
func where(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return "page " + loc + ":\n" + body
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript condition in the page until it holds.
func waitFor(t *testing.T, ctx context.Context, what, js string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(200*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s: %v\n%s", what, err, where(ctx))
	}
	t.Logf("%s: seen", what)
}

func signIn(t *testing.T, ctx context.Context, base, key string) {
	t.Helper()
	do(t, ctx, "sign in",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`#login input[name=key]`)),
		chromedp.SendKeys(chromedp.CSS(`#login input[name=key]`), key),
		chromedp.Submit(chromedp.CSS(`#login input[name=key]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.signout`)),
	)
}

// ocrArchive is a zip of two scanned pages; the JPEG round trip keeps
// them over the inline limit, so their images are stored and drawn.
func ocrArchive(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, lines := range pages.Lines[:2] {
		img, err := pages.Render(pages.Regular, 28, lines)
		if err != nil {
			t.Fatal(err)
		}
		scan, err := pages.JPEG(40)(img)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := zw.Create(fmt.Sprintf("scans/page-%d.png", i+1))
		if err := png.Encode(w, scan); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "scans.zip")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConsole(t *testing.T) {
	adminKey, adminHash := tenants.NewKey()
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_ADMIN_KEYS=" + adminHash, "INFERQ_WEBHOOK_RETRY_SCHEDULE=100ms"}})
	exe := chromium(t) // after startFleet, which skips the test by name in -short mode
	ctx := ctxT(t, 5*time.Minute)
	b := browser(t, ctx, exe)
	acme := tab(t, b)
	signIn(t, acme, f.URL, f.Tenants["acme"].Key)

	// Upload an archive from the page; the batch's page follows it to
	// 100 % by its live updates alone.
	do(t, acme, "upload an archive",
		chromedp.Navigate(f.URL+"/ui/batches"),
		chromedp.SetValue(chromedp.CSS(`#upload-archive select[name=model]`), "ocr"),
		chromedp.SetUploadFiles(chromedp.CSS(`#upload-archive input[name=archive]`), []string{ocrArchive(t)}),
		chromedp.Click(chromedp.CSS(`#upload-archive button`)),
		chromedp.WaitVisible(chromedp.ID(`batch-progress`)),
	)
	loc, _ := chromedp.Run(acme, chromedp.Location())
	batchID := loc[strings.LastIndex(loc, "/")+1:]
	if !strings.HasPrefix(batchID, "b_") {
		t.Fatalf("after the upload the page is %s", loc)
	}
	waitFor(t, acme, "the progress bar at 100 %",
		`(() => { const p = document.getElementById('batch-progress'); return p.max == 2 && p.value == p.max })()`, 3*time.Minute)
	if pct := eval[string](t, acme, `document.getElementById('batch-pct').textContent`); pct != "100 %" {
		t.Fatalf("progress reads %q", pct)
	}

	// The results, as the download link gives them: one job a line.
	if n := eval[int](t, acme, `fetch(document.querySelector('a[download]').href).then(r => r.ok ? r.text() : '').then(t => t.trim().split('\n').filter(l => JSON.parse(l).status === 'succeeded').length)`); n != 2 {
		t.Fatalf("the results download holds %d succeeded jobs, want 2", n)
	}

	// An OCR job: its boxes drawn over its page, its text beside.
	do(t, acme, "open an OCR job", chromedp.Click(chromedp.CSS(`#batch-jobs a`)), chromedp.WaitVisible(chromedp.CSS(`svg.ocr`)))
	boxes := eval[int](t, acme, `document.querySelectorAll('svg.ocr polygon.box').length`)
	lines := eval[int](t, acme, `document.querySelectorAll('ol.lines li').length`)
	if boxes == 0 || boxes != lines {
		t.Fatalf("%d boxes drawn for %d lines", boxes, lines)
	}
	waitFor(t, acme, "the page image under the boxes",
		`(() => { const i = document.querySelector('svg.ocr image'); return !!i && i.getBBox().width > 0 })()`, 30*time.Second)
	jobURL, _ := chromedp.Run(acme, chromedp.Location())

	// Another tenant's batch and job, by URL: not found, nothing shown.
	gc := f.client("globex")
	gb, err := gc.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", Files: []client.File{{Name: "secret-plan.bin", Reader: strings.NewReader("x"), Size: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"/ui/batches/" + gb.ID, "/ui/batches/" + gb.ID + "/results"} {
		resp, err := chromedp.RunResponse(acme, chromedp.Navigate(f.URL+u))
		if err != nil {
			t.Fatal(err)
		}
		text := eval[string](t, acme, `document.body.innerText`)
		if resp.Status != 404 || strings.Contains(text, "globex") || strings.Contains(text, "secret-plan") {
			t.Fatalf("acme opened globex's %s: %d\n%s", u, resp.Status, text)
		}
	}

	// An action without its CSRF token is refused; the same with it is
	// not.
	do(t, acme, "batch page", chromedp.Navigate(f.URL+"/ui/batches/"+batchID), chromedp.WaitVisible(chromedp.ID(`batch-progress`)))
	cancelURL := "/ui/batches/" + batchID + "/cancel"
	if st := eval[int](t, acme, `fetch('`+cancelURL+`', {method: 'POST'}).then(r => r.status)`); st != 403 {
		t.Fatalf("cancel without a CSRF token: %d", st)
	}
	if st := eval[int](t, acme, `fetch('`+cancelURL+`', {method: 'POST', body: new URLSearchParams({csrf: 'forged'})}).then(r => r.status)`); st != 403 {
		t.Fatalf("cancel with a wrong CSRF token: %d", st)
	}
	if st := eval[int](t, acme, `fetch('`+cancelURL+`', {method: 'POST', body: new URLSearchParams({csrf: document.querySelector('input[name=csrf]').value})}).then(r => r.status)`); st != 200 {
		t.Fatalf("cancel with the page's CSRF token: %d", st)
	}

	// Try a model on one file: the form submits a job and shows it.
	probe := filepath.Join(t.TempDir(), "probe.bin")
	if err := os.WriteFile(probe, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	do(t, acme, "try a model",
		chromedp.Navigate(f.URL+"/ui/models"),
		chromedp.SetValue(chromedp.CSS(`#try select[name=model]`), "echo"),
		chromedp.SetUploadFiles(chromedp.CSS(`#try input[name=file]`), []string{probe}),
		chromedp.Click(chromedp.CSS(`#try button`)),
		chromedp.WaitVisible(chromedp.ID(`job-status`)),
	)
	if loc, _ := chromedp.Run(acme, chromedp.Location()); !strings.Contains(loc, "/ui/jobs/") {
		t.Fatalf("try it went to %s", loc)
	}
	waitFor(t, acme, "the tried job's page to show it succeeded, live",
		`document.getElementById('job-status').textContent === 'succeeded' && !!document.querySelector('pre.json')`, time.Minute)

	// A job whose webhook cannot be delivered (its URL carries a token):
	// the operator sees the failed delivery, by host only, and replays it.
	if _, err := f.client("acme").Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader("hook"), FileName: "h.bin",
		WebhookURL: "http://127.0.0.1:1/hooks?token=s3cr3t-t0ken"}); err != nil {
		t.Fatal(err)
	}
	op := tab(t, b)
	signIn(t, op, f.URL, adminKey)
	for deadline := time.Now().Add(time.Minute); ; {
		do(t, op, "webhooks page", chromedp.Navigate(f.URL+"/ui/webhooks"), chromedp.WaitVisible(chromedp.CSS(`table.webhooks`)))
		if eval[int](t, op, `document.querySelectorAll('table.webhooks form').length`) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed delivery listed\n%s", where(op))
		}
		time.Sleep(time.Second)
	}
	if html := eval[string](t, op, `document.documentElement.outerHTML`); strings.Contains(html, "s3cr3t") || !strings.Contains(html, "127.0.0.1:1") {
		t.Fatal("the webhooks page shows the URL's token, or not its host")
	}
	do(t, op, "replay a delivery", chromedp.Click(chromedp.CSS(`table.webhooks form button`)), chromedp.WaitVisible(chromedp.CSS(`p.ok`)))

	// The operator sees a queue grow while the only worker is stopped.
	do(t, op, "fleet page", chromedp.Navigate(f.URL+"/ui/fleet"), chromedp.WaitVisible(chromedp.ID(`fleet-body`)))
	f.Workers[0].Stop(30 * time.Second)
	ac := f.client("acme")
	submit := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := ac.Submit(ctx, client.Submit{Model: "echo", Input: bytes.NewReader([]byte{byte(i)}), FileName: "x.bin"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	queued := `(() => { const td = document.querySelector('tr[data-model="echo"][data-tier="premium"] td.queued'); return td ? +td.dataset.queued : -1 })()`
	submit(5)
	waitFor(t, op, "5 echo jobs queued", queued+` >= 5`, time.Minute)
	submit(10)
	waitFor(t, op, "the queue grown to 15", queued+` >= 15`, time.Minute)

	if dir := os.Getenv("INFERQ_SCREENSHOTS"); dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(fleettest.RepoRoot(), dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		shoot := func(tctx context.Context, name, url string) {
			for _, sz := range [][2]int64{{1280, 800}, {390, 844}} {
				do(t, tctx, "screenshot "+name,
					chromedp.EmulateViewport(sz[0], sz[1], func(p *emulation.SetDeviceMetricsOverrideParams, _ *emulation.SetTouchEmulationEnabledParams) {
						p.Mobile = sz[0] < 600
					}),
					chromedp.Navigate(f.URL+url), chromedp.WaitVisible(chromedp.CSS(`main`)), chromedp.Sleep(300*time.Millisecond))
				png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, sz[0])), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The fleet with a worker again, its queue drained.
		if _, err := f.StartWorker(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, op, "the queue drained", queued+` == 0`, 2*time.Minute)
		shoot(op, "fleet", "/ui/fleet")
		shoot(op, "webhooks", "/ui/webhooks")
		shoot(acme, "batches", "/ui/batches")
		shoot(acme, "batch", "/ui/batches/"+batchID)
		shoot(acme, "job-ocr", strings.TrimPrefix(jobURL, f.URL))
		shoot(acme, "jobs", "/ui/jobs")
		shoot(acme, "models", "/ui/models")
		login := tab(t, b)
		shoot(login, "sign-in", "/ui/login")
	}
}
