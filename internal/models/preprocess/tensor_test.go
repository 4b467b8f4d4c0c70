package preprocess

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// npy builds a .npy file: version 1 or 2, the given descr, shape tuple
// text and raw little-endian data, padded as numpy pads (to 64 bytes).
func npy(version int, descr, shape string, fortran bool, data []byte) []byte {
	f := "False"
	if fortran {
		f = "True"
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, f, shape)
	pre := 10
	if version >= 2 {
		pre = 12
	}
	for (pre+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	b := append([]byte("\x93NUMPY"), byte(version), 0)
	if version >= 2 {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
	} else {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	}
	b = append(b, header...)
	return append(b, data...)
}

// npyRaw builds a version 1 .npy file around any header text.
func npyRaw(header string, data []byte) string {
	header += "\n"
	b := binary.LittleEndian.AppendUint16([]byte("\x93NUMPY\x01\x00"), uint16(len(header)))
	return string(append(append(b, header...), data...))
}

func f32s(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func f64s(vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

func i32s(vs ...int32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

func i64s(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

const (
	ctJSON = "application/json"
	ctNPY  = "application/x-npy"
)

func TestParseTensorAccepts(t *testing.T) {
	cases := []struct {
		name      string
		data      string
		ct        string
		spec      TensorSpec
		want      []float32
		wantShape []int64
	}{
		{"nested", "[[1, 2, 3], [4, 5, 6]]", ctJSON, TensorSpec{Shape: []int64{2, 3}}, []float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}},
		{"flat fills shape", "[1,2,3,4,5,6]", ctJSON, TensorSpec{Shape: []int64{2, 3}}, []float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}},
		{"flat solves a free dim", "[1,2,3,4,5,6]", ctJSON, TensorSpec{Shape: []int64{-1, 3}}, []float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}},
		{"free dims", " [[1],[2]] ", ctJSON, TensorSpec{Shape: []int64{-1, -1}}, []float32{1, 2}, []int64{2, 1}},
		{"batch of one dropped", "[[[1,2,3],[4,5,6]]]", ctJSON, TensorSpec{Shape: []int64{2, 3}}, []float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}},
		{"rank 1", "[0.5, -0.25, 1e2, 2E-1, -0]", ctJSON, TensorSpec{Shape: []int64{-1}}, []float32{0.5, -0.25, 100, 0.2, 0}, []int64{5}},
		{"scalar", " 3.5 ", ctJSON, TensorSpec{Shape: []int64{}}, []float32{3.5}, []int64{}},
		{"scalar from one-element list", "[3.5]", ctJSON, TensorSpec{Shape: []int64{}}, []float32{3.5}, []int64{}},
		{"int64", "[-3, 3.0, 16777216]", ctJSON, TensorSpec{DType: DTypeInt64, Shape: []int64{3}}, []float32{-3, 3, 16777216}, []int64{3}},
		{"uint8", "[0, 255]", ctJSON, TensorSpec{DType: DTypeUint8, Shape: []int64{2}}, []float32{0, 255}, []int64{2}},
		{"json charset", "[1]", "application/json; charset=utf-8", TensorSpec{Shape: []int64{1}}, []float32{1}, []int64{1}},
		{"no content type", "[1]", "", TensorSpec{Shape: []int64{1}}, []float32{1}, []int64{1}},
		{"octet-stream json", "[1]", "application/octet-stream", TensorSpec{Shape: []int64{1}}, []float32{1}, []int64{1}},
		{"underflow is zero", "[1e-400]", ctJSON, TensorSpec{Shape: []int64{1}}, []float32{0}, []int64{1}},

		{"npy <f4", string(npy(1, "<f4", "(2, 2)", false, f32s(1, -2, 3.5, 0))), ctNPY, TensorSpec{Shape: []int64{2, 2}}, []float32{1, -2, 3.5, 0}, []int64{2, 2}},
		{"npy <f8", string(npy(1, "<f8", "(3,)", false, f64s(1, 0.1, -1e30))), ctNPY, TensorSpec{Shape: []int64{3}}, []float32{1, 0.1, -1e30}, []int64{3}},
		{"npy <i4", string(npy(1, "<i4", "(2,)", false, i32s(-7, 1<<20))), ctNPY, TensorSpec{DType: DTypeInt64, Shape: []int64{2}}, []float32{-7, 1 << 20}, []int64{2}},
		{"npy <i8", string(npy(1, "<i8", "(2,)", false, i64s(-7, 1<<24))), ctNPY, TensorSpec{DType: DTypeInt64, Shape: []int64{2}}, []float32{-7, 1 << 24}, []int64{2}},
		{"npy |u1", string(npy(1, "|u1", "(1, 3)", false, []byte{0, 128, 255})), ctNPY, TensorSpec{DType: DTypeUint8, Shape: []int64{3}}, []float32{0, 128, 255}, []int64{3}},
		{"npy ints for float", string(npy(1, "<i8", "(2,)", false, i64s(1, 2))), ctNPY, TensorSpec{Shape: []int64{2}}, []float32{1, 2}, []int64{2}},
		{"npy u1 for int64", string(npy(1, "|u1", "(2,)", false, []byte{1, 2})), ctNPY, TensorSpec{DType: DTypeInt64, Shape: []int64{2}}, []float32{1, 2}, []int64{2}},
		{"npy i8 in range for uint8", string(npy(1, "<i8", "(2,)", false, i64s(0, 255))), ctNPY, TensorSpec{DType: DTypeUint8, Shape: []int64{2}}, []float32{0, 255}, []int64{2}},
		{"npy v2", string(npy(2, "<f4", "(1,)", false, f32s(7))), ctNPY, TensorSpec{Shape: []int64{1}}, []float32{7}, []int64{1}},
		{"npy v3", string(npy(3, "<f4", "(1,)", false, f32s(7))), ctNPY, TensorSpec{Shape: []int64{1}}, []float32{7}, []int64{1}},
		{"npy scalar", string(npy(1, "<f4", "()", false, f32s(7))), ctNPY, TensorSpec{Shape: []int64{}}, []float32{7}, []int64{}},
		{"npy long suffix, no comma", string(npy(1, "<f4", "(2L)", false, f32s(7, 8))), ctNPY, TensorSpec{Shape: []int64{2}}, []float32{7, 8}, []int64{2}},
		{"npy sniffed despite json type", string(npy(1, "<f4", "(1,)", false, f32s(7))), ctJSON, TensorSpec{Shape: []int64{1}}, []float32{7}, []int64{1}},
		{"npy sniffed, no type", string(npy(1, "<f4", "(1,)", false, f32s(7))), "", TensorSpec{Shape: []int64{1}}, []float32{7}, []int64{1}},
		{"npy flat fills shape", string(npy(1, "<f4", "(4,)", false, f32s(1, 2, 3, 4))), ctNPY, TensorSpec{Shape: []int64{2, 2}}, []float32{1, 2, 3, 4}, []int64{2, 2}},
		{"npy double quotes", npyRaw(`{"descr": "<f4", "fortran_order": False, "shape": (1,)}`, f32s(9)), ctNPY, TensorSpec{Shape: []int64{1}}, []float32{9}, []int64{1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals, shape, err := ParseTensor([]byte(c.data), c.ct, c.spec, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(vals, c.want) || !slices.Equal(shape, c.wantShape) {
				t.Errorf("got %v %v, want %v %v", vals, shape, c.want, c.wantShape)
			}
		})
	}
}

func TestParseTensorRefuses(t *testing.T) {
	f23 := TensorSpec{Shape: []int64{2, 3}}
	any1 := TensorSpec{Shape: []int64{-1}}
	cases := []struct {
		name string
		data string
		ct   string
		spec TensorSpec
		code string
	}{
		{"wrong shape", "[[1,2],[3,4]]", ctJSON, f23, CodeInvalidTensor},
		{"wrong rank", "[[[1,2,3]],[[4,5,6]]]", ctJSON, f23, CodeInvalidTensor},
		{"batch of two", "[[[1,2,3],[4,5,6]],[[1,2,3],[4,5,6]]]", ctJSON, f23, CodeInvalidTensor},
		{"flat wrong length", "[1,2,3,4,5]", ctJSON, f23, CodeInvalidTensor},
		{"flat with two free dims", "[1,2,3,4]", ctJSON, TensorSpec{Shape: []int64{-1, -1}}, CodeInvalidTensor},
		{"flat not divisible", "[1,2,3,4]", ctJSON, TensorSpec{Shape: []int64{-1, 3}}, CodeInvalidTensor},
		{"flat under huge dims", "[1,2]", ctJSON, TensorSpec{Shape: []int64{1 << 40, 1 << 40, -1}}, CodeInvalidTensor},
		{"ragged", "[[1,2],[3]]", ctJSON, any1, CodeInvalidTensor},
		{"ragged number then array", "[1,[2]]", ctJSON, any1, CodeInvalidTensor},
		{"ragged array then number", "[[1],2]", ctJSON, any1, CodeInvalidTensor},
		{"ragged depth", "[[[1]],[2]]", ctJSON, any1, CodeInvalidTensor},
		{"empty", "[]", ctJSON, any1, CodeInvalidTensor},
		{"empty nested", "[[]]", ctJSON, any1, CodeInvalidTensor},
		{"nothing", "", ctJSON, any1, CodeInvalidTensor},
		{"blank", "  \n", ctJSON, any1, CodeInvalidTensor},
		{"NaN", "[NaN]", ctJSON, any1, CodeInvalidTensor},
		{"Infinity", "[Infinity]", ctJSON, any1, CodeInvalidTensor},
		{"-Infinity", "[-Infinity]", ctJSON, any1, CodeInvalidTensor},
		{"over float32", "[1e39]", ctJSON, any1, CodeInvalidTensor},
		{"over float64", "[1e400]", ctJSON, any1, CodeInvalidTensor},
		{"trailing comma", "[1,]", ctJSON, any1, CodeInvalidTensor},
		{"missing comma", "[1 2]", ctJSON, any1, CodeInvalidTensor},
		{"leading zero", "[01]", ctJSON, any1, CodeInvalidTensor},
		{"plus", "[+1]", ctJSON, any1, CodeInvalidTensor},
		{"bare dot", "[1.]", ctJSON, any1, CodeInvalidTensor},
		{"leading dot", "[.5]", ctJSON, any1, CodeInvalidTensor},
		{"bare exponent", "[1e]", ctJSON, any1, CodeInvalidTensor},
		{"hex", "[0x10]", ctJSON, any1, CodeInvalidTensor},
		{"unterminated", "[[1,2]", ctJSON, any1, CodeInvalidTensor},
		{"trailing data", "[1]x", ctJSON, any1, CodeInvalidTensor},
		{"two values", "[1] [2]", ctJSON, any1, CodeInvalidTensor},
		{"object", `{"data":[1]}`, ctJSON, any1, CodeInvalidTensor},
		{"string", `["1"]`, ctJSON, any1, CodeInvalidTensor},
		{"bool", "[true]", ctJSON, any1, CodeInvalidTensor},
		{"null", "[null]", ctJSON, any1, CodeInvalidTensor},
		{"too deep", strings.Repeat("[", 100000), ctJSON, any1, CodeInvalidTensor},
		{"int64 fraction", "[2.5]", ctJSON, TensorSpec{DType: DTypeInt64, Shape: []int64{1}}, CodeInvalidTensor},
		{"int64 over 2^24", "[16777217]", ctJSON, TensorSpec{DType: DTypeInt64, Shape: []int64{1}}, CodeInvalidTensor},
		{"uint8 256", "[256]", ctJSON, TensorSpec{DType: DTypeUint8, Shape: []int64{1}}, CodeInvalidTensor},
		{"uint8 negative", "[-1]", ctJSON, TensorSpec{DType: DTypeUint8, Shape: []int64{1}}, CodeInvalidTensor},
		{"uint8 fraction", "[0.5]", ctJSON, TensorSpec{DType: DTypeUint8, Shape: []int64{1}}, CodeInvalidTensor},
		{"unknown content type", "[1]", "image/png", any1, CodeUnsupported},
		{"npy type without magic", "[1]", ctNPY, any1, CodeInvalidTensor},

		{"npy NaN", string(npy(1, "<f4", "(1,)", false, f32s(float32(math.NaN())))), ctNPY, any1, CodeInvalidTensor},
		{"npy Inf", string(npy(1, "<f8", "(1,)", false, f64s(math.Inf(-1)))), ctNPY, any1, CodeInvalidTensor},
		{"npy f8 over float32", string(npy(1, "<f8", "(1,)", false, f64s(1e300))), ctNPY, any1, CodeInvalidTensor},
		{"npy float for int64", string(npy(1, "<f4", "(1,)", false, f32s(1))), ctNPY, TensorSpec{DType: DTypeInt64, Shape: []int64{1}}, CodeInvalidTensor},
		{"npy float for uint8", string(npy(1, "<f8", "(1,)", false, f64s(1))), ctNPY, TensorSpec{DType: DTypeUint8, Shape: []int64{1}}, CodeInvalidTensor},
		{"npy i8 over uint8", string(npy(1, "<i8", "(1,)", false, i64s(300))), ctNPY, TensorSpec{DType: DTypeUint8, Shape: []int64{1}}, CodeInvalidTensor},
		{"npy i8 over 2^24", string(npy(1, "<i8", "(1,)", false, i64s(1<<40))), ctNPY, TensorSpec{DType: DTypeInt64, Shape: []int64{1}}, CodeInvalidTensor},
		{"npy big-endian", string(npy(1, ">f4", "(1,)", false, f32s(1))), ctNPY, any1, CodeInvalidTensor},
		{"npy float16", string(npy(1, "<f2", "(1,)", false, []byte{0, 0})), ctNPY, any1, CodeInvalidTensor},
		{"npy fortran", string(npy(1, "<f4", "(1,)", true, f32s(1))), ctNPY, any1, CodeInvalidTensor},
		{"npy wrong shape", string(npy(1, "<f4", "(2,)", false, f32s(1, 2))), ctNPY, TensorSpec{Shape: []int64{3}}, CodeInvalidTensor},
		{"npy short data", string(npy(1, "<f4", "(3,)", false, f32s(1, 2))), ctNPY, any1, CodeInvalidTensor},
		{"npy extra data", string(npy(1, "<f4", "(1,)", false, f32s(1, 2))), ctNPY, any1, CodeInvalidTensor},
		{"npy empty", string(npy(1, "<f4", "(0,)", false, nil)), ctNPY, any1, CodeInvalidTensor},
		{"npy negative dim", string(npy(1, "<f4", "(-1,)", false, nil)), ctNPY, any1, CodeInvalidTensor},
		{"npy huge dims", string(npy(1, "<f4", "(99999999999999999999,)", false, nil)), ctNPY, any1, CodeInvalidTensor},
		{"npy header lies about length", "\x93NUMPY\x01\x00\xff\xff{}", ctNPY, any1, CodeInvalidTensor},
		{"npy version 9", "\x93NUMPY\x09\x00\x00\x00", ctNPY, any1, CodeInvalidTensor},
		{"npy truncated", "\x93NUMPY\x01", ctNPY, any1, CodeInvalidTensor},
		{"npy v2 long header", "\x93NUMPY\x02\x00\xff\xff\xff\x7f", ctNPY, any1, CodeInvalidTensor},
		{"npy unknown key", string(npy(1, "<f4", "(1,), 'x': 1", false, f32s(1))), ctNPY, any1, CodeInvalidTensor},
		{"npy missing key", npyRaw("{'descr': '<f4'}", nil), ctNPY, any1, CodeInvalidTensor},
		{"npy not a dict", npyRaw("abc", nil), ctNPY, any1, CodeInvalidTensor},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals, shape, err := ParseTensor([]byte(c.data), c.ct, c.spec, 0)
			if CodeOf(err) != c.code {
				t.Fatalf("got %v %v, err %v; want code %s", vals, shape, err, c.code)
			}
		})
	}
}

func TestParseTensorElementCap(t *testing.T) {
	spec := TensorSpec{Shape: []int64{-1}}
	if _, _, err := ParseTensor([]byte("[1,2,3]"), ctJSON, spec, 3); err != nil {
		t.Errorf("3 of 3: %v", err)
	}
	if _, _, err := ParseTensor([]byte("[1,2,3,4]"), ctJSON, spec, 3); CodeOf(err) != CodeTooLarge {
		t.Errorf("json 4 of 3: err %v, want %s", err, CodeTooLarge)
	}
	if _, _, err := ParseTensor(npy(1, "<f4", "(4,)", false, f32s(1, 2, 3, 4)), ctNPY, spec, 3); CodeOf(err) != CodeTooLarge {
		t.Errorf("npy 4 of 3: err %v, want %s", err, CodeTooLarge)
	}
	// A header claiming 2^62 values is refused before any allocation.
	if _, _, err := ParseTensor(npy(1, "<f4", "(2147483648, 2147483648)", false, nil), ctNPY, spec, 0); CodeOf(err) != CodeTooLarge {
		t.Errorf("npy huge: err %v, want %s", err, CodeTooLarge)
	}
}

func TestTensorSpecValidate(t *testing.T) {
	for _, s := range []TensorSpec{{}, {DType: DTypeInt64, Shape: []int64{-1, 3}}, {DType: DTypeUint8, Shape: []int64{}}} {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	for _, s := range []TensorSpec{{DType: "float16"}, {Shape: []int64{0}}, {Shape: []int64{-2}}, {Shape: make([]int64, 33)}} {
		if err := s.Validate(); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%+v: err %v, want ErrInvalidSpec", s, err)
		}
		if _, _, err := ParseTensor([]byte("[1]"), ctJSON, s, 0); !errors.Is(err, ErrInvalidSpec) || CodeOf(err) != "" {
			t.Errorf("ParseTensor with %+v: err %v, want ErrInvalidSpec without a code", s, err)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	cause := errors.New("unexpected EOF")
	e := &Error{Code: CodeInvalidImage, Message: "cannot decode png data", Err: cause}
	if got := e.Error(); got != "preprocess: invalid_image: cannot decode png data: unexpected EOF" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(e, cause) {
		t.Error("Unwrap does not reach the cause")
	}
	wrapped := fmt.Errorf("job 7: %w", e)
	if CodeOf(wrapped) != CodeInvalidImage || CodeOf(cause) != "" || CodeOf(nil) != "" {
		t.Error("CodeOf")
	}
}
