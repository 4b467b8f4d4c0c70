package intake

import "testing"

func TestSniffType(t *testing.T) {
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
	for _, c := range []struct{ declared, head, name, want string }{
		{"image/jpeg; q=1", png, "a.png", "image/jpeg"},
		{"", png, "a.bin", "image/png"},
		{"application/octet-stream", png, "", "image/png"},
		{"", `[[1, 2], [3, 4]]`, "t.json", "application/json"},
		{"", "hello", "notes", "text/plain"},
		{"application/pdf; ocr=force; x=1", "%PDF-1.4", "", "application/pdf; ocr=force"},
		{"", "II*\x00\x08\x00\x00\x00", "scan", "image/tiff"},
		{"", "MM\x00*\x00\x00\x00\x08", "scan.bin", "image/tiff"},
		{"", "%PDF-1.4\n", "report", "application/pdf"},
		{"", "\x93NUMPY\x01\x00", "t.unknownext", "application/octet-stream"},
	} {
		if got := SniffType(c.declared, []byte(c.head), c.name); got != c.want {
			t.Errorf("SniffType(%q, %q, %q) = %q, want %q", c.declared, c.head, c.name, got, c.want)
		}
	}
}
