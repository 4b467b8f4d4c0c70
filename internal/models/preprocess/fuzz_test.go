package preprocess

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"
)

// fuzzSpecs are the Fill specs every decoded fuzz image goes through.
var fuzzSpecs = []ImageSpec{
	{Width: 5, Height: 3, Resize: ResizeLetterbox, Color: ColorGray, Invert: InvertAuto, PadValue: 7},
	{Width: 4, Height: 4, Resize: ResizeCrop, Color: ColorBGR, Layout: LayoutNHWC, Mean: []float32{0.5}, Std: []float32{0.25}},
	{Width: 3, Height: 6},
}

func FuzzDecodeImage(f *testing.F) {
	for _, data := range sampleImages(f) {
		f.Add(data)
	}
	for _, data := range bombs(f) {
		f.Add(data)
	}
	jpg := encode(f, quadrants(), encodeJPEG)
	f.Add(spliceAfterSOI(jpg, exifSegment(binary.BigEndian, 6, 3)))
	f.Add(spliceAfterSOI(jpg, exifSegment(binary.LittleEndian, 7, 4)))
	f.Add(grayTIFF(binary.BigEndian, 3, 2, []byte{1, 2, 3, 4, 5, 6}, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxPixels = 1 << 16
		img, format, err := DecodeImage(data, maxPixels)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		b := img.Bounds()
		if format == "" || b.Empty() || int64(b.Dx())*int64(b.Dy()) > maxPixels {
			t.Fatalf("format %q bounds %v", format, b)
		}
		for _, s := range fuzzSpecs {
			dst := make([]float32, s.Len())
			if err := s.Fill(dst, img); err != nil {
				t.Fatalf("Fill(%+v): %v", s, err)
			}
			for i, v := range dst {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("Fill(%+v): value %d is %v", s, i, v)
				}
			}
		}
	})
}

// fuzzTensorSpecs are the declared shapes FuzzParseTensor picks from.
var fuzzTensorSpecs = [][]int64{{-1}, {2, -1}, {}, {2, 3}, {-1, -1, 2}}

func FuzzParseTensor(f *testing.F) {
	for _, s := range []string{
		"[[1, 2, 3], [4, 5, 6]]", "[1,2,3,4,5,6]", "3.5", "[[[1,2],[3,4]]]", "[-0.5e-3, 1E+2]",
		"[[1,2],[3]]", "[NaN]", "[1e39]", "[01]", "[[]]", "[1,]", "  [ 1 ]  ", "[16777217]",
	} {
		f.Add([]byte(s), ctJSON, uint8(0))
		f.Add([]byte(s), "", uint8(3))
	}
	f.Add(npy(1, "<f4", "(2, 3)", false, f32s(1, 2, 3, 4, 5, 6)), ctNPY, uint8(3))
	f.Add(npy(1, "<f8", "(4,)", false, f64s(1, 2, 3, 4)), ctNPY, uint8(1))
	f.Add(npy(2, "<i8", "(1, 2)", false, i64s(1, 2)), ctNPY, uint8(6))
	f.Add(npy(1, "<i4", "(2,)", false, i32s(1, 2)), ctNPY, uint8(5))
	f.Add(npy(3, "|u1", "(2, 2, 2)", false, []byte{1, 2, 3, 4, 5, 6, 7, 8}), ctNPY, uint8(14))
	f.Add([]byte(npyRaw(`{"descr": "<f4", "fortran_order": False, "shape": (1L,)}`, f32s(9))), "application/octet-stream", uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, ct string, sel uint8) {
		want := fuzzTensorSpecs[int(sel)%len(fuzzTensorSpecs)]
		dtype := []string{DTypeFloat32, DTypeInt64, DTypeUint8}[int(sel)/len(fuzzTensorSpecs)%3]
		vals, shape, err := ParseTensor(data, ct, TensorSpec{DType: dtype, Shape: want}, 1<<12)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		if n != int64(len(vals)) || len(vals) == 0 || len(vals) > 1<<12 {
			t.Fatalf("%d values for shape %v", len(vals), shape)
		}
		if len(shape) != len(want) {
			t.Fatalf("shape %v for declared %v", shape, want)
		}
		for i, d := range want {
			if d != -1 && shape[i] != d {
				t.Fatalf("shape %v for declared %v", shape, want)
			}
		}
		for i, v := range vals {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("value %d is %v", i, v)
			}
			if dtype != DTypeFloat32 && v != float32(math.Trunc(float64(v))) {
				t.Fatalf("%s value %d is %v", dtype, i, v)
			}
		}
		// Whatever the JSON parser accepts, encoding/json must too.
		if !bytes.HasPrefix(data, npyMagic) && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}
