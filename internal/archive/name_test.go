package archive

import (
	"strings"
	"testing"
)

func TestCleanName(t *testing.T) {
	good := map[string]string{
		"a.png":                  "a.png",
		"dir/a.png":              "dir/a.png",
		"./dir//a.png":           "dir/a.png",
		`dir\sub\a.png`:          "dir/sub/a.png",
		"dir/./a.png":            "dir/a.png",
		"über/日本.png":            "über/日本.png",
		"..a/b..":                "..a/b..",
		"a/...":                  "a/...",
		"dir/a.png/":             "dir/a.png",
		"C.png":                  "C.png",
		"1:2.png":                "1:2.png",
		strings.Repeat("a", 255): strings.Repeat("a", 255),
	}
	for in, want := range good {
		got, err := CleanName(in)
		if err != nil || got != want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", ".", "./", "/", "..", "../a", "a/..", "a/../b", `a\..\b`, "/a", `\a`, "//a", "C:a", "c:/a",
		"a\x00b", "a\nb", "a\x7fb", "a\u0085b", "\xff.png", strings.Repeat("a", 256), strings.Repeat("a/", 513)}
	for _, in := range bad {
		if got, err := CleanName(in); Code(err) != CodeUnsafePath {
			t.Errorf("CleanName(%q) = %q, %v; want archive_unsafe_path", in, got, err)
		}
	}
}

func TestSniff(t *testing.T) {
	tarHead := make([]byte, 512)
	copy(tarHead[257:], "ustar\x0000")
	cases := map[string][]byte{
		KindZip:   []byte("PK\x03\x04rest"),
		KindTarGz: {0x1f, 0x8b, 8, 0},
		KindTar:   tarHead,
		"":        []byte("%PDF-1.7"),
	}
	for want, head := range cases {
		if got := Sniff(head); got != want {
			t.Errorf("Sniff(%q...) = %q, want %q", head[:4], got, want)
		}
	}
	if Sniff(nil) != "" || Sniff(tarHead[:200]) != "" {
		t.Error("short input sniffed")
	}
	for name, want := range map[string]string{"a.ZIP": KindZip, "x.tar.gz": KindTarGz, "x.tgz": KindTarGz, "x.tar": KindTar, "x.gz": ""} {
		if got := KindFromName(name); got != want {
			t.Errorf("KindFromName(%q) = %q, want %q", name, got, want)
		}
	}
}
