package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func checkThousand(t *testing.T, got []file, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	names, bodies := thousandFiles()
	if len(got) != len(names) {
		t.Fatalf("got %d files, want %d", len(got), len(names))
	}
	for i := range names {
		if got[i].name != names[i] || got[i].body != string(bodies[i]) || got[i].size != int64(len(bodies[i])) {
			t.Fatalf("file %d = %q (%d bytes declared, %q), want %q (%q)", i, got[i].name, got[i].size, got[i].body, names[i], bodies[i])
		}
	}
}

func TestWalkZipThousandFiles(t *testing.T) {
	names, bodies := thousandFiles()
	entries := []zipEntry{{name: "scans/", mode: fs.ModeDir | 0o755}}
	for i := range names {
		entries = append(entries, zipEntry{name: names[i], body: bodies[i]})
	}
	data := makeZip(t, entries)
	if Sniff(data) != KindZip {
		t.Fatalf("Sniff = %q", Sniff(data))
	}
	got, err := collect(t, data, KindZip, Limits{})
	checkThousand(t, got, err)
}

func TestWalkTarThousandFiles(t *testing.T) {
	names, bodies := thousandFiles()
	hdrs := []*tar.Header{{Name: "scans/", Typeflag: tar.TypeDir, Mode: 0o755}}
	all := [][]byte{nil}
	for i := range names {
		hdrs = append(hdrs, regular(names[i], bodies[i]))
		all = append(all, bodies[i])
	}
	for _, kind := range []string{KindTarGz, KindTar} {
		t.Run(kind, func(t *testing.T) {
			data := makeTar(t, kind == KindTarGz, hdrs, all)
			if Sniff(data) != kind {
				t.Fatalf("Sniff = %q, want %q", Sniff(data), kind)
			}
			got, err := collect(t, data, kind, Limits{})
			checkThousand(t, got, err)
		})
	}
}

// writesUnder is a WalkFunc that stores files under dir the naive way, as
// a careless consumer would; the tests check nothing lands outside.
func writesUnder(dir string) WalkFunc {
	return func(name string, _ int64, r io.Reader) error {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return os.WriteFile(p, b, 0o644)
	}
}

// onlyUnder fails unless every file under root is inside root/batch.
func onlyUnder(t *testing.T, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(p, filepath.Join(root, "batch")+string(filepath.Separator)) {
			t.Errorf("written outside the batch: %s", p)
		}
		return nil
	})
}

var slipNames = []string{
	"../evil.txt", "../../../../../../tmp/evil.txt", "a/../../evil.txt", "a/b/../../../evil.txt",
	`..\..\evil.txt`, `a\..\..\evil.txt`, "/etc/evil.txt", `\evil.txt`, "C:/evil.txt", `C:\evil.txt`,
	"//server/share/evil.txt", "a/../evil.txt", "ok/\x00.txt", "line\nbreak.txt",
}

func TestWalkZipSlip(t *testing.T) {
	for _, bad := range slipNames {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			root := t.TempDir()
			data := makeZip(t, []zipEntry{{name: "fine.txt", body: []byte("x")}, {name: bad, body: []byte("pwned")}})
			err := Walk(context.Background(), bytes.NewReader(data), KindZip, Limits{}, writesUnder(filepath.Join(root, "batch")))
			wantCode(t, err, CodeUnsafePath)
			onlyUnder(t, root)
			if _, err := os.Stat(filepath.Join(root, "batch", "fine.txt")); err == nil {
				t.Error("zip entries were handed out before the archive was judged")
			}
		})
	}
}

func TestWalkTarSlip(t *testing.T) {
	for _, bad := range slipNames {
		if strings.ContainsRune(bad, 0) {
			continue // tar headers cannot hold NUL
		}
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			root := t.TempDir()
			data := makeTar(t, true, []*tar.Header{regular("fine.txt", []byte("x")), regular(bad, []byte("pwned"))}, [][]byte{[]byte("x"), []byte("pwned")})
			err := Walk(context.Background(), bytes.NewReader(data), KindTarGz, Limits{}, writesUnder(filepath.Join(root, "batch")))
			wantCode(t, err, CodeUnsafePath)
			onlyUnder(t, root)
		})
	}
}

func TestWalkLinks(t *testing.T) {
	zips := map[string][]zipEntry{
		"zip symlink":     {{name: "link", body: []byte("/etc/passwd"), mode: fs.ModeSymlink | 0o777}},
		"zip char device": {{name: "tty", mode: fs.ModeDevice | fs.ModeCharDevice | 0o600}},
		"zip fifo":        {{name: "pipe", mode: fs.ModeNamedPipe | 0o600}},
	}
	for name, entries := range zips {
		t.Run(name, func(t *testing.T) {
			_, err := collect(t, makeZip(t, append([]zipEntry{{name: "a.txt", body: []byte("a")}}, entries...)), KindZip, Limits{})
			wantCode(t, err, CodeLink)
		})
	}
	tars := map[string]*tar.Header{
		"tar symlink":     {Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		"tar hard link":   {Name: "hard", Typeflag: tar.TypeLink, Linkname: "a.txt"},
		"tar char device": {Name: "tty", Typeflag: tar.TypeChar, Devmajor: 4, Devminor: 1},
		"tar fifo":        {Name: "pipe", Typeflag: tar.TypeFifo},
	}
	for name, h := range tars {
		for _, kind := range []string{KindTar, KindTarGz} {
			t.Run(name+" "+kind, func(t *testing.T) {
				h := *h
				data := makeTar(t, kind == KindTarGz, []*tar.Header{regular("a.txt", []byte("a")), &h}, [][]byte{[]byte("a")})
				_, err := collect(t, data, kind, Limits{})
				wantCode(t, err, CodeLink)
			})
		}
	}
}

// zerosDeflated is a raw deflate stream of 1 GiB of zeros (about 1.3 MB),
// made once by streaming, so no test holds a gigabyte.
var zerosDeflated = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	chunk := make([]byte, 1<<20)
	for range 1024 {
		fw.Write(chunk)
	}
	fw.Close()
	return buf.Bytes()
})

var zerosCRC = sync.OnceValue(func() uint32 {
	h := crc32.NewIEEE()
	chunk := make([]byte, 1<<20)
	for range 1024 {
		h.Write(chunk)
	}
	return h.Sum32()
})

// bombZip is a zip with one deflated entry of 1 GiB of zeros whose
// header claims uncompressed and compressed sizes as given.
func bombZip(t *testing.T, uncompressed, compressed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name: "zeros.bin", Method: zip.Deflate, CRC32: zerosCRC(),
		UncompressedSize64: uncompressed, CompressedSize64: compressed,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(zerosDeflated())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWalkZipBomb(t *testing.T) {
	gib := uint64(1 << 30)
	real := uint64(len(zerosDeflated()))
	var read int64
	countRead := func(_ string, _ int64, r io.Reader) error {
		n, err := io.Copy(io.Discard, r)
		read += n
		return err
	}
	t.Run("honest header", func(t *testing.T) {
		read = 0
		err := Walk(context.Background(), bytes.NewReader(bombZip(t, gib, real)), KindZip, Limits{}, countRead)
		wantCode(t, err, CodeBomb)
		if read != 0 {
			t.Fatalf("unpacked %d bytes of a bomb its header gave away", read)
		}
	})
	t.Run("header hides the size", func(t *testing.T) {
		read = 0
		err := Walk(context.Background(), bytes.NewReader(bombZip(t, 1000, real)), KindZip, Limits{}, countRead)
		if c := Code(err); c != CodeBomb && c != CodeInvalid {
			t.Fatalf("err = %v, want archive_bomb or archive_invalid", err)
		}
		if read > 2*RatioFloor {
			t.Fatalf("unpacked %d bytes before refusing", read)
		}
	})
	t.Run("header overstates the compressed size", func(t *testing.T) {
		read = 0
		err := Walk(context.Background(), bytes.NewReader(bombZip(t, gib, gib/10)), KindZip, Limits{MaxEntryBytes: 2 << 30}, countRead)
		wantCode(t, err, CodeBomb)
		if read > 2*RatioFloor {
			t.Fatalf("unpacked %d bytes before refusing", read)
		}
	})
}

// TestWalkTarGzBomb streams a tar.gz holding a 1 GiB file of zeros from a
// generator: the test never holds it, and Walk must stop the stream long
// before its end. The size limits are raised so the ratio is what trips.
func TestWalkTarGzBomb(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		tw := tar.NewWriter(zw)
		err := tw.WriteHeader(&tar.Header{Name: "zeros.bin", Typeflag: tar.TypeReg, Size: 1 << 30, Mode: 0o644})
		chunk := make([]byte, 1<<20)
		for i := 0; i < 1024 && err == nil; i++ {
			_, err = tw.Write(chunk)
		}
		if err == nil {
			err = tw.Close()
		}
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	var read int64
	err := Walk(context.Background(), pr, KindTarGz, Limits{MaxEntryBytes: 4 << 30, MaxTotalBytes: 4 << 30},
		func(_ string, _ int64, r io.Reader) error {
			n, err := io.Copy(io.Discard, r)
			read += n
			return err
		})
	pr.CloseWithError(errors.New("test done"))
	wantCode(t, err, CodeBomb)
	if read > 2*RatioFloor {
		t.Fatalf("unpacked %d bytes before refusing", read)
	}
}

func TestWalkTooManyEntries(t *testing.T) {
	lim := Limits{MaxEntries: 10}
	var entries []zipEntry
	var hdrs []*tar.Header
	var bodies [][]byte
	for i := range 11 {
		entries = append(entries, zipEntry{name: fmt.Sprintf("f%02d", i), body: []byte("x")})
		hdrs = append(hdrs, regular(fmt.Sprintf("f%02d", i), []byte("x")))
		bodies = append(bodies, []byte("x"))
	}
	zipData := makeZip(t, entries)
	got, err := collect(t, zipData, KindZip, lim)
	wantCode(t, err, CodeTooManyEntries)
	if len(got) != 0 {
		t.Fatalf("zip handed out %d files before refusing", len(got))
	}
	if got, err := collect(t, zipData, KindZip, Limits{MaxEntries: 11}); err != nil || len(got) != 11 {
		t.Fatalf("11 entries with a limit of 11: %d files, %v", len(got), err)
	}

	// An end record that claims one entry does not hide the other ten.
	lying := bytes.Clone(zipData)
	eocd := bytes.LastIndex(lying, []byte("PK\x05\x06"))
	binary.LittleEndian.PutUint16(lying[eocd+8:], 1)
	binary.LittleEndian.PutUint16(lying[eocd+10:], 1)
	_, err = collect(t, lying, KindZip, lim)
	wantCode(t, err, CodeTooManyEntries)

	for _, kind := range []string{KindTar, KindTarGz} {
		_, err := collect(t, makeTar(t, kind == KindTarGz, hdrs, bodies), kind, lim)
		wantCode(t, err, CodeTooManyEntries)
	}
}

func TestWalkSizeLimits(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<12) // 64 KiB, under RatioFloor
	zipData := makeZip(t, []zipEntry{{name: "a", body: big}, {name: "b", body: big}})
	tarData := makeTar(t, true, []*tar.Header{regular("a", big), regular("b", big)}, [][]byte{big, big})
	cases := []struct {
		lim  Limits
		code string
	}{
		{Limits{MaxEntryBytes: 64<<10 - 1}, CodeTooLarge},
		{Limits{MaxTotalBytes: 128<<10 - 1}, CodeTooLarge},
		{Limits{MaxArchiveBytes: 100}, CodeTooLarge},
		{Limits{MaxEntryBytes: 64 << 10, MaxTotalBytes: 128 << 10}, ""},
	}
	for _, c := range cases {
		for kind, data := range map[string][]byte{KindZip: zipData, KindTarGz: tarData} {
			got, err := collect(t, data, kind, c.lim)
			if Code(err) != c.code || (c.code == "" && (err != nil || len(got) != 2)) {
				t.Errorf("%s with %+v: %d files, err %v; want code %q", kind, c.lim, len(got), err, c.code)
			}
		}
	}
}

func TestWalkDuplicateNames(t *testing.T) {
	_, err := collect(t, makeZip(t, []zipEntry{{name: "a/b.txt"}, {name: "a//./b.txt"}}), KindZip, Limits{})
	wantCode(t, err, CodeInvalid)
	_, err = collect(t, makeTar(t, false, []*tar.Header{regular("x", nil), regular("./x", nil)}, nil), KindTar, Limits{})
	wantCode(t, err, CodeInvalid)
}

func TestWalkUnreadRestIsChecked(t *testing.T) {
	// fn reads nothing; the bomb's bytes are still unpacked through the
	// checks (and so refused) when Walk skips them.
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		tw := tar.NewWriter(zw)
		err := tw.WriteHeader(&tar.Header{Name: "zeros.bin", Typeflag: tar.TypeReg, Size: 1 << 30, Mode: 0o644})
		chunk := make([]byte, 1<<20)
		for i := 0; i < 1024 && err == nil; i++ {
			_, err = tw.Write(chunk)
		}
		pw.CloseWithError(err)
	}()
	err := Walk(context.Background(), pr, KindTarGz, Limits{MaxEntryBytes: 4 << 30, MaxTotalBytes: 4 << 30},
		func(string, int64, io.Reader) error { return nil })
	pr.CloseWithError(errors.New("test done"))
	wantCode(t, err, CodeBomb)
}

func TestWalkErrorsPassThrough(t *testing.T) {
	data := makeTar(t, true, []*tar.Header{regular("a", []byte("a")), regular("b", []byte("b"))}, [][]byte{[]byte("a"), []byte("b")})
	stop := errors.New("stop here")
	err := Walk(context.Background(), bytes.NewReader(data), KindTarGz, Limits{}, func(string, int64, io.Reader) error { return stop })
	if !errors.Is(err, stop) || Code(err) != "" {
		t.Fatalf("fn's error: %v", err)
	}

	dropped := errors.New("client went away")
	err = Walk(context.Background(), io.MultiReader(bytes.NewReader(data[:20]), iotestErr{dropped}), KindTarGz, Limits{},
		func(string, int64, io.Reader) error { return nil })
	if !errors.Is(err, dropped) || Code(err) != "" {
		t.Fatalf("source error: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Walk(ctx, bytes.NewReader(data), KindTarGz, Limits{}, func(string, int64, io.Reader) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}

	for _, kind := range []string{KindZip, KindTarGz, KindTar} {
		if _, err := collect(t, []byte("this is not an archive at all, not even close................................"), kind, Limits{}); Code(err) != CodeInvalid {
			t.Errorf("%s of garbage: %v", kind, err)
		}
	}
	if _, err := collect(t, data, "rar", Limits{}); Code(err) != CodeInvalid {
		t.Errorf("unknown kind: %v", err)
	}
	if !errors.Is(newErr(CodeBomb, "x", "y", nil), ErrBomb) || errors.Is(newErr(CodeBomb, "x", "y", nil), ErrLink) {
		t.Error("errors.Is by code")
	}
}

type iotestErr struct{ err error }

func (r iotestErr) Read([]byte) (int, error) { return 0, r.err }

func TestWalkTruncated(t *testing.T) {
	names, bodies := thousandFiles()
	var hdrs []*tar.Header
	for i := range names[:20] {
		hdrs = append(hdrs, regular(names[i], bodies[i]))
	}
	data := makeTar(t, true, hdrs, bodies[:20])
	_, err := collect(t, data[:len(data)/2], KindTarGz, Limits{})
	wantCode(t, err, CodeInvalid)
	zipData := makeZip(t, []zipEntry{{name: "a", body: []byte("hello")}})
	_, err = collect(t, zipData[:len(zipData)-5], KindZip, Limits{})
	wantCode(t, err, CodeInvalid)
}

func TestWalkSkipsOSMetadata(t *testing.T) {
	want := []file{{"a.png", 1, "a"}, {"dir/b.png", 1, "b"}}
	zipData := makeZip(t, []zipEntry{{name: "a.png", body: []byte("a")}, {name: "__MACOSX/._a.png", body: []byte("junk")},
		{name: "dir/.DS_Store", body: []byte("junk")}, {name: "dir/b.png", body: []byte("b")}, {name: "Thumbs.db", body: []byte("junk")}})
	tarData := makeTar(t, true, []*tar.Header{regular("./a.png", []byte("a")), regular("./._a.png", []byte("junk")),
		regular("dir/b.png", []byte("b")), regular("dir/desktop.ini", []byte("junk"))},
		[][]byte{[]byte("a"), []byte("junk"), []byte("b"), []byte("junk")})
	for kind, data := range map[string][]byte{KindZip: zipData, KindTarGz: tarData} {
		got, err := collect(t, data, kind, Limits{})
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, %v; want %v", kind, got, err, want)
		}
	}
	// Metadata names are still judged.
	_, err := collect(t, makeZip(t, []zipEntry{{name: "../__MACOSX/x"}}), KindZip, Limits{})
	wantCode(t, err, CodeUnsafePath)
}
