package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"strings"
	"testing"
)

var fuzzLimits = Limits{MaxArchiveBytes: 1 << 20, MaxEntries: 64, MaxEntryBytes: 1 << 20, MaxTotalBytes: 4 << 20, MaxRatio: 50}

// fuzzWalk checks the promises Walk makes whatever the bytes: no panic,
// only clean names handed out, limits kept, every failure an *Error.
func fuzzWalk(t *testing.T, data []byte, kind string) {
	var total int64
	err := Walk(context.Background(), bytes.NewReader(data), kind, fuzzLimits, func(name string, _ int64, r io.Reader) error {
		if c, err := CleanName(name); err != nil || c != name {
			t.Fatalf("handed out name %q (clean: %q, %v)", name, c, err)
		}
		if strings.HasPrefix(name, "/") || strings.Contains("/"+name+"/", "/../") {
			t.Fatalf("handed out unsafe name %q", name)
		}
		n, err := io.Copy(io.Discard, r)
		if n > fuzzLimits.MaxEntryBytes+1 {
			t.Fatalf("entry %q unpacked %d bytes", name, n)
		}
		total += n
		return err
	})
	if total > fuzzLimits.MaxTotalBytes+1 {
		t.Fatalf("unpacked %d bytes in all", total)
	}
	if err != nil && Code(err) == "" {
		t.Fatalf("error without a code: %v", err)
	}
}

func FuzzWalkZip(f *testing.F) {
	f.Add(makeZip(f, []zipEntry{{name: "a.txt", body: []byte("hello")}, {name: "dir/", mode: fs.ModeDir | 0o755},
		{name: "dir/b.png", body: bytes.Repeat([]byte{0}, 4096)}}))
	f.Add(makeZip(f, []zipEntry{{name: "../x", body: []byte("x")}}))
	f.Add(makeZip(f, []zipEntry{{name: "l", body: []byte("/etc"), mode: fs.ModeSymlink | 0o777}}))
	f.Add(makeZip(f, nil))
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzWalk(t, data, KindZip) })
}

func FuzzWalkTarGz(f *testing.F) {
	f.Add(makeTar(f, true, []*tar.Header{regular("a.txt", []byte("hello")), {Name: "d/", Typeflag: tar.TypeDir},
		regular("d/b", bytes.Repeat([]byte{1}, 3000))}, [][]byte{[]byte("hello"), nil, bytes.Repeat([]byte{1}, 3000)}))
	f.Add(makeTar(f, true, []*tar.Header{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/"}}, nil))
	f.Add(makeTar(f, true, []*tar.Header{regular("../../x", []byte("x"))}, [][]byte{[]byte("x")}))
	f.Add(makeTar(f, true, []*tar.Header{{Name: "p", Typeflag: tar.TypeReg, Size: 3, PAXRecords: map[string]string{"path": "a/b/c"}}}, [][]byte{[]byte("abc")}))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzWalk(t, data, KindTarGz) })
}
