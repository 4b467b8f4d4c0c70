package onnxpb

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
)

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// GraphIO is what a model file declares at its edges.
type GraphIO struct {
	IRVersion int64
	Opset     int64 // of the default domain; 0 if not imported
	Inputs    []ValueInfo
	Outputs   []ValueInfo
}

// ReadGraphIOFile reads the declared inputs and outputs of the ONNX model
// at path.
func ReadGraphIOFile(path string) (*GraphIO, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	io, err := ReadGraphIO(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return io, nil
}

// ReadGraphIO reads the declared inputs and outputs of an encoded
// ModelProto, skipping everything else. Inputs that are also initializers
// (older exporters list weights as inputs) are left out.
func ReadGraphIO(b []byte) (*GraphIO, error) {
	out := &GraphIO{}
	var graph []byte
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == modelIRVersion && typ == protowire.VarintType:
			out.IRVersion = int64(x)
		case num == modelGraph && typ == protowire.BytesType:
			graph = v
		case num == modelOpsetImport && typ == protowire.BytesType:
			domain, version, err := readOpset(v)
			if err != nil {
				return err
			}
			if domain == "" || domain == "ai.onnx" {
				out.Opset = version
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if graph == nil {
		return nil, errors.New("model has no graph")
	}
	inits := map[string]bool{}
	var ins []ValueInfo
	err = fields(graph, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case graphInitializer:
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num == tensorName && typ == protowire.BytesType {
					inits[string(v)] = true
				}
				return nil
			})
		case graphInput, graphOutput:
			vi, err := readValueInfo(v)
			if err != nil {
				return err
			}
			if num == graphInput {
				ins = append(ins, vi)
			} else {
				out.Outputs = append(out.Outputs, vi)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		if !inits[in.Name] {
			out.Inputs = append(out.Inputs, in)
		}
	}
	return out, nil
}

func readValueInfo(b []byte) (ValueInfo, error) {
	var vi ValueInfo
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == valueInfoName && typ == protowire.BytesType:
			vi.Name = string(v)
		case num == valueInfoType && typ == protowire.BytesType:
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != typeTensorType || typ != protowire.BytesType {
					return nil
				}
				return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
					switch {
					case num == tensorElemType && typ == protowire.VarintType:
						vi.DType = DType(x)
					case num == tensorShape && typ == protowire.BytesType:
						vi.Shape = []Dim{}
						return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
							if num != shapeDim || typ != protowire.BytesType {
								return nil
							}
							var d Dim
							err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
								switch {
								case num == dimValue && typ == protowire.VarintType:
									d.Value = int64(x)
								case num == dimParam && typ == protowire.BytesType:
									d.Param = string(v)
								}
								return nil
							})
							vi.Shape = append(vi.Shape, d)
							return err
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	return vi, err
}

// fields walks the top-level fields of one message, handing each to fn
// with its bytes (length-delimited fields) or its number (the others).
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad protobuf tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var f uint32
			f, n = protowire.ConsumeFixed32(b)
			x = uint64(f)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("bad protobuf field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// Dims renders a declared shape as manifests write it: -1 for each
// symbolic or unknown dimension.
func Dims(shape []Dim) []int64 {
	out := make([]int64, len(shape))
	for i, d := range shape {
		if d.Param != "" || d.Value <= 0 {
			out[i] = -1
		} else {
			out[i] = d.Value
		}
	}
	return out
}

// readOpset reads an OperatorSetIdProto: its domain ("" is ONNX's) and
// version.
func readOpset(b []byte) (domain string, version int64, err error) {
	err = fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == opsetDomain && typ == protowire.BytesType:
			domain = string(v)
		case num == opsetVersion && typ == protowire.VarintType:
			version = int64(x)
		}
		return nil
	})
	return domain, version, err
}
