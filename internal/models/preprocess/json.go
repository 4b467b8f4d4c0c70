package preprocess

import (
	"errors"
	"math"
	"strconv"
)

// parseJSONTensor reads a JSON number or a rectangular nest of JSON
// arrays of numbers. It is a narrow hand-written parser rather than
// encoding/json because a tensor can hold millions of numbers, and
// decoding them into []any costs an allocation each; it follows the JSON
// grammar for numbers exactly (no NaN, Infinity, hex or leading '+').
func parseJSONTensor(data []byte, dtype string, maxElems int) ([]float32, []int64, error) {
	p := jsonParser{data: data}
	p.space()
	if p.i == len(data) {
		return nil, nil, p.fail("no JSON value")
	}
	if data[p.i] != '[' {
		v, err := p.value(dtype)
		if err != nil {
			return nil, nil, err
		}
		p.space()
		if p.i != len(data) {
			return nil, nil, p.fail("unexpected data after the value")
		}
		return []float32{v}, []int64{}, nil
	}

	var (
		vals   []float32
		dims   []int64 // length of the arrays at each depth, once seen
		counts []int64 // elements so far in each open array
		leaf   int     // depth that holds numbers, once seen
	)
	for {
		// A value is expected.
		p.space()
		if p.i < len(data) && data[p.i] == '[' {
			p.i++
			depth := len(counts) + 1
			switch {
			case depth > maxRank:
				return nil, nil, p.fail("arrays nested deeper than %d", maxRank)
			case leaf != 0 && depth > leaf:
				return nil, nil, p.fail("ragged array: an array where a number belongs")
			}
			if depth > len(dims) {
				dims = append(dims, -1)
			}
			counts = append(counts, 0)
			p.space()
			if p.i < len(data) && data[p.i] == ']' {
				return nil, nil, p.fail("empty array")
			}
			continue
		}
		depth := len(counts)
		if leaf == 0 {
			leaf = depth
		} else if depth != leaf {
			return nil, nil, p.fail("ragged array: a number where an array belongs")
		}
		if len(vals) >= maxElems {
			return nil, nil, inputError(CodeTooLarge, nil, "tensor has more than %d values", maxElems)
		}
		v, err := p.value(dtype)
		if err != nil {
			return nil, nil, err
		}
		vals = append(vals, v)
		counts[depth-1]++

		// After a value: ',' or the end of one or more arrays.
		for {
			p.space()
			if p.i == len(data) {
				return nil, nil, p.fail("unterminated array")
			}
			c := data[p.i]
			p.i++
			if c == ',' {
				break
			}
			if c != ']' {
				return nil, nil, p.fail("want ',' or ']', found %q", c)
			}
			d := len(counts) - 1
			switch n := counts[d]; {
			case dims[d] == -1:
				dims[d] = n
			case dims[d] != n:
				return nil, nil, p.fail("ragged array: %d elements where an earlier array at the same depth has %d", n, dims[d])
			}
			counts = counts[:d]
			if d == 0 {
				p.space()
				if p.i != len(data) {
					return nil, nil, p.fail("unexpected data after the array")
				}
				return vals, dims, nil
			}
			counts[d-1]++
		}
	}
}

type jsonParser struct {
	data []byte
	i    int
}

func (p *jsonParser) fail(format string, args ...any) *Error {
	e := inputError(CodeInvalidTensor, nil, format, args...)
	e.Message = "JSON at byte " + strconv.Itoa(p.i) + ": " + e.Message
	return e
}

func (p *jsonParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) digits() int {
	n := 0
	for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// value reads one JSON number and converts it for dtype.
func (p *jsonParser) value(dtype string) (float32, error) {
	start := p.i
	if p.i < len(p.data) && p.data[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.data) && p.data[p.i] == '0':
		p.i++
	case p.digits() == 0:
		p.i = start
		return 0, p.fail("want a number")
	}
	if p.i < len(p.data) && p.data[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return 0, p.fail("malformed number")
		}
	}
	if p.i < len(p.data) && (p.data[p.i] == 'e' || p.data[p.i] == 'E') {
		p.i++
		if p.i < len(p.data) && (p.data[p.i] == '+' || p.data[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return 0, p.fail("malformed number")
		}
	}
	v, err := strconv.ParseFloat(string(p.data[start:p.i]), 64)
	if err != nil && !(errors.Is(err, strconv.ErrRange) && !math.IsInf(v, 0)) {
		// The grammar was checked, so this is an overflow.
		return 0, p.fail("number %s is out of range", p.data[start:p.i])
	}
	f, problem := convert(v, dtype)
	if problem != "" {
		return 0, p.fail("%s", problem)
	}
	return f, nil
}
