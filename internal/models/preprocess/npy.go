package preprocess

import (
	"encoding/binary"
	"math"
	"strconv"
)

const maxNPYHeader = 1 << 16

// npyType is a .npy element type this package reads.
type npyType struct {
	size    int
	integer bool
	read    func([]byte) float64
}

var npyTypes = map[string]npyType{
	"<f4": {4, false, func(b []byte) float64 { return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))) }},
	"<f8": {8, false, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }},
	"<i4": {4, true, func(b []byte) float64 { return float64(int32(binary.LittleEndian.Uint32(b))) }},
	"<i8": {8, true, func(b []byte) float64 { return float64(int64(binary.LittleEndian.Uint64(b))) }},
	"|u1": {1, true, func(b []byte) float64 { return float64(b[0]) }},
	"<u1": {1, true, func(b []byte) float64 { return float64(b[0]) }},
}

// parseNPY reads a NumPy .npy file (format 1.0, 2.0 or 3.0; C order;
// little-endian float32, float64, int32, int64 or uint8).
func parseNPY(data []byte, dtype string, maxElems int) ([]float32, []int64, error) {
	bad := func(format string, args ...any) ([]float32, []int64, error) {
		e := inputError(CodeInvalidTensor, nil, format, args...)
		e.Message = "npy: " + e.Message
		return nil, nil, e
	}
	if len(data) < 10 {
		return bad("truncated header")
	}
	var hlen, start int
	switch major := data[6]; major {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(data[8:])), 10
	case 2, 3:
		if len(data) < 12 {
			return bad("truncated header")
		}
		n := binary.LittleEndian.Uint32(data[8:])
		if n > maxNPYHeader {
			return bad("header of %d bytes is too long", n)
		}
		hlen, start = int(n), 12
	default:
		return bad("format version %d.%d is not supported", major, data[7])
	}
	if start+hlen > len(data) {
		return bad("truncated header")
	}
	h, err := parseNPYHeader(data[start : start+hlen])
	if err != nil {
		return bad("header: %v", err)
	}
	t, ok := npyTypes[h.descr]
	switch {
	case !ok:
		return bad("dtype %q is not supported (want <f4, <f8, <i4, <i8 or |u1, little-endian)", h.descr)
	case h.fortran:
		return bad("Fortran-order arrays are not supported; save a C-order array")
	case !t.integer && dtype != DTypeFloat32:
		return bad("dtype %s does not fit a %s input", h.descr, dtype)
	}
	n := int64(1)
	for _, d := range h.shape {
		if d != 0 && n > int64(maxElems)/d {
			return nil, nil, inputError(CodeTooLarge, nil, "npy: array of shape %v has more than %d values", h.shape, maxElems)
		}
		n *= d
	}
	if n == 0 {
		return bad("array is empty")
	}
	body := data[start+hlen:]
	if int64(len(body)) != n*int64(t.size) {
		return bad("%d data bytes for %d values of %s", len(body), n, h.descr)
	}
	vals := make([]float32, n)
	for i := range vals {
		v, problem := convert(t.read(body[i*t.size:]), dtype)
		if problem != "" {
			return bad("value %d: %s", i, problem)
		}
		vals[i] = v
	}
	return vals, h.shape, nil
}

type npyHeader struct {
	descr   string
	fortran bool
	shape   []int64
}

type headerError string

func (e headerError) Error() string { return string(e) }

// parseNPYHeader reads the Python dict literal of a .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
func parseNPYHeader(b []byte) (npyHeader, error) {
	var h npyHeader
	i := 0
	space := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
			i++
		}
	}
	expect := func(c byte) error {
		space()
		if i >= len(b) || b[i] != c {
			return headerError("want " + strconv.QuoteRune(rune(c)) + " at byte " + strconv.Itoa(i))
		}
		i++
		return nil
	}
	str := func() (string, error) {
		space()
		if i >= len(b) || (b[i] != '\'' && b[i] != '"') {
			return "", headerError("want a string at byte " + strconv.Itoa(i))
		}
		q := b[i]
		i++
		s := i
		for i < len(b) && b[i] != q {
			i++
		}
		if i >= len(b) {
			return "", headerError("unterminated string")
		}
		i++
		return string(b[s : i-1]), nil
	}
	if err := expect('{'); err != nil {
		return h, err
	}
	seen := map[string]bool{}
	for {
		space()
		if i < len(b) && b[i] == '}' {
			i++
			break
		}
		key, err := str()
		if err != nil {
			return h, err
		}
		if seen[key] {
			return h, headerError("duplicate key " + key)
		}
		seen[key] = true
		if err := expect(':'); err != nil {
			return h, err
		}
		space()
		switch key {
		case "descr":
			if h.descr, err = str(); err != nil {
				return h, err
			}
		case "fortran_order":
			switch {
			case hasWord(b[i:], "True"):
				h.fortran, i = true, i+4
			case hasWord(b[i:], "False"):
				h.fortran, i = false, i+5
			default:
				return h, headerError("fortran_order is not True or False")
			}
		case "shape":
			if h.shape, err = parseShapeTuple(b, &i); err != nil {
				return h, err
			}
		default:
			return h, headerError("unknown key " + strconv.Quote(key))
		}
		space()
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if err := expect('}'); err != nil {
			return h, err
		}
		break
	}
	space()
	if i != len(b) {
		return h, headerError("unexpected data after the header dict")
	}
	if !seen["descr"] || !seen["fortran_order"] || !seen["shape"] {
		return h, headerError("header lacks descr, fortran_order or shape")
	}
	return h, nil
}

func hasWord(b []byte, w string) bool {
	return len(b) >= len(w) && string(b[:len(w)]) == w
}

// parseShapeTuple reads a Python tuple of non-negative integers: (), (3,),
// (2, 3); a missing comma in (3) is forgiven. Python 2's long suffix L is accepted.
func parseShapeTuple(b []byte, ip *int) ([]int64, error) {
	i := *ip
	defer func() { *ip = i }()
	space := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
			i++
		}
	}
	if i >= len(b) || b[i] != '(' {
		return nil, headerError("shape is not a tuple")
	}
	i++
	shape := []int64{}
	for {
		space()
		if i < len(b) && b[i] == ')' {
			i++
			return shape, nil
		}
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return nil, headerError("want a dimension at byte " + strconv.Itoa(i))
		}
		d, err := strconv.ParseInt(string(b[s:i]), 10, 64)
		if err != nil {
			return nil, headerError("dimension " + string(b[s:i]) + " is out of range")
		}
		if i < len(b) && b[i] == 'L' {
			i++
		}
		if len(shape) >= maxRank {
			return nil, headerError("shape has more than " + strconv.Itoa(maxRank) + " dimensions")
		}
		shape = append(shape, d)
		space()
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == ')' {
			continue
		}
		return nil, headerError("want ',' or ')' at byte " + strconv.Itoa(i))
	}
}
