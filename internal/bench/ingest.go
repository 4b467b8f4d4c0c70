package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/models/zoo"
)

const aboutIngest = "A bulk upload of small scans: one batch of `digits` crops (64x64 gray PNGs of the UCI digits with scanner-like noise, about 2 KiB each, the same files every run) posted to `POST /v1/batches` by the Go SDK from the harness's process, once as that many multipart `file` parts and once as one zip `archive` part (deflated, as zip tools write it), each waited on with `GET /v1/batches/<id>` (every 100 ms) until `done`. Ingest is files per second from the start of the request to its 202 (the jobs are then durable); end to end is jobs succeeded per second from the start of the request to `done`. Beside each round, on the same NATS server, the harness publishes as many messages asynchronously (nats.go `PublishAsync` with a `Nats-Msg-Id` each, one wait for all acks) to a stream configured like the fleet's JOBS stream (file storage, work-queue retention, a dedupe window), each message the size of a job message carrying one of these files inline: that is the rate an ingest bound by JetStream would approach, so the ratio says how close the producer's batch path comes to it. Rounds alternate JetStream, multipart, zip. `digits`, not `echo`, because digit crops are what such a batch holds; its compute is next to nothing at the worker's batch sizes (see ort-raw), so end to end is still the fleet's own path."

// ingestPNGSize and ingestNoise give about 2 KiB per file: a 64x64 crop
// whose noise (±ingestNoise gray levels) compresses like a scan's.
const (
	ingestPNGSize = 64
	ingestNoise   = 3
)

// ingestFiles draws n digit crops: the held-out UCI digits in turn,
// upscaled, dark on light, with seeded noise, so that every run posts the
// same bytes.
func ingestFiles(n int) ([][]byte, error) {
	ds, _, err := zoo.DigitsHeldOut()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	img := image.NewGray(image.Rect(0, 0, ingestPNGSize, ingestPNGSize))
	var buf bytes.Buffer
	for i := range n {
		d := ds[i%len(ds)]
		r := rand.New(rand.NewPCG(16, uint64(i)))
		for y := range ingestPNGSize {
			for x := range ingestPNGSize {
				v := 255 - int(d[(y*8/ingestPNGSize)*8+x*8/ingestPNGSize])*255/16 + r.IntN(2*ingestNoise+1) - ingestNoise
				img.SetGray(x, y, color.Gray{Y: uint8(min(255, max(0, v)))})
			}
		}
		buf.Reset()
		if err := png.Encode(&buf, img); err != nil {
			return nil, err
		}
		out[i] = bytes.Clone(buf.Bytes())
	}
	return out, nil
}

// ingestName is file i's name in the batch (and in the zip).
func ingestName(i int) string { return fmt.Sprintf("scans/%05d.png", i) }

// zipOf packs files as a zip archive, deflated like zip tools do.
func zipOf(files [][]byte) ([]byte, error) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i, f := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: ingestName(i), Method: zip.Deflate, Modified: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// inlineMessageSize is the size of the queue message of a batch's job
// whose input (of size bytes) rides inline.
func inlineMessageSize(model string, size int) int {
	now := time.Now().UTC()
	return len(jobs.MessageFor(&jobs.Job{
		ID: jobs.NewID(), Tenant: "bench-bulk", Tier: "bulk", Model: model, BatchID: "b_" + jobs.NewID(),
		CreatedAt: now, Deadline: now.Add(time.Hour), ContentType: "image/png", InputSize: int64(size),
		Input: make([]byte, size),
	}).Encode())
}

// jetstreamPublish publishes n messages of size bytes asynchronously, each
// with its own Nats-Msg-Id, to a fresh stream configured like the fleet's
// JOBS stream, waits once for every ack, and returns the messages per
// second from the first publish to the last ack.
func jetstreamPublish(ctx context.Context, url string, n, size int) (float64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	name := fmt.Sprintf("BENCHPUB%d", time.Now().UnixNano())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{"benchpub." + name}, Storage: jetstream.FileStorage,
		Retention: jetstream.WorkQueuePolicy, Duplicates: 2 * time.Minute, Discard: jetstream.DiscardNew,
	}); err != nil {
		return 0, err
	}
	defer func() { _ = js.DeleteStream(context.Background(), name) }()
	data := bytes.Repeat([]byte{'x'}, size)
	subj := "benchpub." + name
	prefix := jobs.NewID()
	futs := make([]jetstream.PubAckFuture, 0, n)
	start := time.Now()
	for i := range n {
		f, err := js.PublishMsgAsync(&nats.Msg{Subject: subj, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{fmt.Sprintf("%s-%d", prefix, i)}}})
		if err != nil {
			return 0, fmt.Errorf("publish %d: %w", i, err)
		}
		futs = append(futs, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(time.Minute):
		return 0, errors.New("jetstream publish: acks not all in after a minute")
	}
	el := time.Since(start)
	for i, f := range futs {
		select {
		case err := <-f.Err():
			return 0, fmt.Errorf("publish %d: %w", i, err)
		default:
		}
	}
	return float64(n) / el.Seconds(), nil
}

// ingestRun is one batch submitted and waited on.
type ingestRun struct {
	accept, done time.Duration // from the start of the request
	succeeded    int64
	failed       int64
	ingestCPU    *cpuUse // start of the request to the 202
	runCPU       *cpuUse // 202 to done
}

func (ir ingestRun) filesPerS(n int) float64 { return div(float64(n), ir.accept.Seconds()) }
func (ir ingestRun) jobsPerS() float64       { return div(float64(ir.succeeded), ir.done.Seconds()) }

// submitIngest posts one batch (files as parts, or zipped when zipped is
// not nil) and polls it until done.
func submitIngest(ctx context.Context, c *client.Client, files [][]byte, zipped []byte, drain time.Duration, procs map[string]int) (ingestRun, error) {
	b := client.BatchSubmit{Model: "digits"}
	if zipped != nil {
		b.Archive, b.ArchiveName = bytes.NewReader(zipped), "scans.zip"
	} else {
		for i, f := range files {
			b.Files = append(b.Files, client.File{Name: ingestName(i), ContentType: "image/png", Size: int64(len(f)), Reader: bytes.NewReader(f)})
		}
	}
	var ir ingestRun
	cpu0 := readCPU(procs)
	start := time.Now()
	acc, err := c.SubmitBatch(ctx, b)
	if err != nil {
		return ir, fmt.Errorf("submit: %w", err)
	}
	ir.accept = time.Since(start)
	cpu1 := readCPU(procs)
	ir.ingestCPU = cpu1.minus(cpu0)
	if acc.Jobs != int64(len(files)) || len(acc.Refused) > 0 {
		return ir, fmt.Errorf("batch %s: %d jobs of %d files, %d refused %v", acc.ID, acc.Jobs, len(files), len(acc.Refused), acc.Refused)
	}
	wctx, cancel := context.WithTimeout(ctx, drain)
	defer cancel()
	var last *client.Batch
	for {
		bt, err := c.GetBatch(wctx, acc.ID)
		if err == nil {
			last = bt
			if bt.Done {
				break
			}
		} else if wctx.Err() == nil {
			return ir, fmt.Errorf("batch %s: %w", acc.ID, err)
		}
		if wctx.Err() != nil {
			msg := "no reading"
			if last != nil {
				msg = fmt.Sprintf("%+v", last.Counts)
			}
			return ir, fmt.Errorf("batch %s not done after %s: %s", acc.ID, drain, msg)
		}
		sleepCtx(wctx, 100*time.Millisecond)
	}
	ir.done = time.Since(start)
	ir.runCPU = readCPU(procs).minus(cpu1)
	ir.succeeded, ir.failed = last.Counts.Succeeded, last.Counts.Failed+last.Counts.Canceled+last.Counts.Expired
	return ir, nil
}

func runIngest(ctx context.Context, e *env, r *Result) error {
	s := e.size
	n := s.IngestFiles
	files, err := ingestFiles(n)
	if err != nil {
		return err
	}
	zipped, err := zipOf(files)
	if err != nil {
		return err
	}
	var total int
	for _, f := range files {
		total += len(f)
	}
	pngMean := total / n
	msgSize := inlineMessageSize("digits", pngMean)

	f, err := e.startFleet(fleetOpts{name: "ingest", models: []string{"digits"}})
	if err != nil {
		return err
	}
	defer f.stop()
	c := client.New(f.URL, f.keys["bulk"])
	c.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	procs := f.procs()
	procs["client (harness)"] = os.Getpid()

	// A small batch first, so that the first measured one does not pay
	// for the fleet's first jobs.
	warm := min(64, n)
	if _, err := submitIngest(ctx, c, files[:warm], nil, s.IngestDrain, procs); err != nil {
		return fmt.Errorf("warm-up batch: %w", err)
	}

	forms := []string{"multipart", "zip"}
	var jsRates []float64
	ingest := map[string][]float64{}
	e2e := map[string][]float64{}
	var ingestCPU, runCPU = map[string][]*cpuUse{}, map[string][]*cpuUse{}
	var failed int64
	for round := range s.Rounds {
		jr, err := jetstreamPublish(ctx, "nats://"+f.back.NATS.Addr, n, msgSize)
		if err != nil {
			return fmt.Errorf("jetstream publish: %w", err)
		}
		jsRates = append(jsRates, jr)
		line := fmt.Sprintf("ingest round %d: jetstream publish %.0f msgs/s", round+1, jr)
		for _, form := range forms {
			var z []byte
			if form == "zip" {
				z = zipped
			}
			ir, err := submitIngest(ctx, c, files, z, s.IngestDrain, procs)
			if err != nil {
				return fmt.Errorf("%s batch: %w", form, err)
			}
			ingest[form] = append(ingest[form], ir.filesPerS(n))
			e2e[form] = append(e2e[form], ir.jobsPerS())
			ingestCPU[form] = append(ingestCPU[form], ir.ingestCPU)
			runCPU[form] = append(runCPU[form], ir.runCPU)
			failed += ir.failed
			line += fmt.Sprintf(", %s: 202 after %.2fs (%.0f files/s), done after %.2fs (%.0f jobs/s)", form, ir.accept.Seconds(), ir.filesPerS(n), ir.done.Seconds(), ir.jobsPerS())
		}
		e.logf("%s", line)
	}
	for _, form := range forms {
		r.ratio("ingest_files_per_s_over_jetstream_publish_"+form, ratioOfRounds(ingest[form], jsRates),
			fmt.Sprintf("%s: files/s to the batch's 202 over raw JetStream async publish msgs/s (%d-byte messages)", form, msgSize))
	}
	for _, form := range forms {
		name := "ingest_files_per_s_" + form
		r.figure(name, mean(ingest[form]), fmt.Sprintf("files/s, %s batch of %d, start of the request to its 202 (mean of rounds)", form, n))
		r.atLeast(name, 3000, fmt.Sprintf("a %s batch of small files ingested at 3,000 files/s or more (issue 16's figure for its 2-core machine; a figure, so it holds only on such a machine)", form))
	}
	for _, form := range forms {
		r.figure("jobs_per_s_end_to_end_"+form, mean(e2e[form]), fmt.Sprintf("jobs succeeded/s, %s batch, start of the request to done (mean of rounds)", form))
	}
	r.figure("jetstream_publish_msgs_per_s", mean(jsRates), fmt.Sprintf("msgs/s, %d async publishes with msg ids and one wait, same server", n))
	r.figure("batch_files", float64(n), "files per batch")
	r.figure("file_bytes", float64(pngMean), "bytes per PNG (mean)")
	r.figure("zip_bytes", float64(len(zipped)), "bytes of the zip archive")
	r.figure("message_bytes", float64(msgSize), "bytes per published message (a job message with one file inline)")
	if failed > 0 {
		r.note(fmt.Sprintf("%d jobs of the measured batches did not succeed", failed))
	}
	r.addSection("Each round", roundsTable([]string{"jetstream publish msgs/s", "multipart files/s", "zip files/s", "multipart jobs/s end to end", "zip jobs/s end to end"},
		jsRates, ingest["multipart"], ingest["zip"], e2e["multipart"], e2e["zip"]))
	for _, form := range forms {
		jobsN := make([]float64, len(ingestCPU[form]))
		for i := range jobsN {
			jobsN[i] = float64(n)
		}
		r.addSection(form+": CPU per file to the 202", cpuTableOver(ingestCPU[form], jobsN, "from the start of the request to its 202, divided by the files of the batch"))
		r.addSection(form+": CPU per job after the 202", cpuTableOver(runCPU[form], jobsN, "from the 202 to the reading that saw the batch done, divided by its jobs"))
	}
	r.note(fmt.Sprintf("batch of %d files from the bulk tenant; a %d-file batch went first to warm the fleet; %d round(s)", n, warm, s.Rounds))
	return nil
}
