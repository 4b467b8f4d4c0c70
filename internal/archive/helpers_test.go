package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"testing"
	"time"
)

type zipEntry struct {
	name string
	body []byte
	mode fs.FileMode // 0: regular 0644
}

func makeZip(t testing.TB, entries []zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: time.Unix(1700000000, 0)}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func makeTar(t testing.TB, gz bool, hdrs []*tar.Header, bodies [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for i, h := range hdrs {
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if i < len(bodies) && bodies[i] != nil {
			if _, err := tw.Write(bodies[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func regular(name string, body []byte) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)}
}

// file is what a WalkFunc saw.
type file struct {
	name string
	size int64
	body string
}

// collect walks data and returns every file read fully.
func collect(t testing.TB, data []byte, kind string, lim Limits) ([]file, error) {
	t.Helper()
	var got []file
	err := Walk(context.Background(), bytes.NewReader(data), kind, lim, func(name string, size int64, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		got = append(got, file{name, size, string(b)})
		return nil
	})
	return got, err
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if Code(err) != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
}

func thousandFiles() ([]string, [][]byte) {
	names := make([]string, 1000)
	bodies := make([][]byte, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("scans/page-%04d.txt", i)
		bodies[i] = []byte(fmt.Sprintf("page %d\n%s", i, bytes.Repeat([]byte{byte('a' + i%26)}, i%50)))
	}
	return names, bodies
}
