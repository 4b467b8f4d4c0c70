package onnxpb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Editable is an encoded model opened for surgery on its graph: its nodes
// are parsed (op, name, domain, inputs, outputs; attributes stay encoded
// unless a caller replaces them), its outputs are parsed, and everything
// else (the other model and graph fields, initializers, inputs, value
// infos, metadata) is written back byte for byte. It is how the model zoo
// rewrites a model it did not make (PP-OCR's recognizer) without a full
// ONNX object model: only what an edit touches is re-encoded.
type Editable struct {
	modelFields [][]byte // ModelProto fields but the graph, encoded with their tags
	graphFields [][]byte // GraphProto fields but nodes, initializers and outputs
	inits       [][]byte // initializer fields, as read
	// Nodes are the graph's nodes in order; edit the slice and its
	// elements freely. A node read from the file keeps its encoded
	// attributes, written back as they were (Node.Attr reads them); new
	// nodes carry Attrs.
	Nodes []*Node
	// Outputs are the graph's declared outputs.
	Outputs []ValueInfo
	// NewInits are initializers added by the edit, written after the
	// file's own.
	NewInits []*Tensor
	opsets   map[string]int64
}

// Open parses an encoded ModelProto for editing.
func Open(b []byte) (*Editable, error) {
	e := &Editable{opsets: map[string]int64{}}
	var graph []byte
	err := rawFields(b, func(num protowire.Number, typ protowire.Type, v, raw []byte) error {
		switch {
		case num == modelGraph && typ == protowire.BytesType:
			graph = v
			return nil
		case num == modelOpsetImport && typ == protowire.BytesType:
			domain, version, err := readOpset(v)
			if err != nil {
				return err
			}
			e.opsets[domain] = version
		}
		e.modelFields = append(e.modelFields, raw)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if graph == nil {
		return nil, errors.New("model has no graph")
	}
	err = rawFields(graph, func(num protowire.Number, typ protowire.Type, v, raw []byte) error {
		switch {
		case num == graphNode && typ == protowire.BytesType:
			n, err := readNode(v)
			if err != nil {
				return err
			}
			e.Nodes = append(e.Nodes, n)
		case num == graphInitializer && typ == protowire.BytesType:
			e.inits = append(e.inits, raw)
		case num == graphOutput && typ == protowire.BytesType:
			vi, err := readValueInfo(v)
			if err != nil {
				return err
			}
			e.Outputs = append(e.Outputs, vi)
		default:
			e.graphFields = append(e.graphFields, raw)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Opset is the version of domain the model imports ("" is the default
// domain), 0 when it does not.
func (e *Editable) Opset(domain string) int64 { return e.opsets[domain] }

// SetOpset imports domain at version (com.microsoft for ONNX Runtime's
// contrib operators), replacing an import of the same domain.
func (e *Editable) SetOpset(domain string, version int64) {
	var kept [][]byte
	for _, f := range e.modelFields {
		num, typ, n := protowire.ConsumeTag(f)
		if num == modelOpsetImport && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(f[n:])
			var d string
			_ = fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num == opsetDomain && typ == protowire.BytesType {
					d = string(v)
				}
				return nil
			})
			if d == domain {
				continue
			}
		}
		kept = append(kept, f)
	}
	var os []byte
	os = appendStringField(os, opsetDomain, domain)
	os = appendVarintField(os, opsetVersion, uint64(version))
	e.modelFields = append(kept, appendBytesField(nil, modelOpsetImport, os))
	e.opsets[domain] = version
}

// Producer finds the node that writes value, or nil (a graph input or an
// initializer).
func (e *Editable) Producer(value string) *Node {
	for _, n := range e.Nodes {
		for _, o := range n.Outputs {
			if o == value {
				return n
			}
		}
	}
	return nil
}

// Consumers lists the nodes that read value.
func (e *Editable) Consumers(value string) []*Node {
	var out []*Node
	for _, n := range e.Nodes {
		for _, in := range n.Inputs {
			if in == value {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// Constant reads the tensor a Constant node writes to value (its "value"
// attribute), or the initializer called value; nil when value is neither.
func (e *Editable) Constant(value string) (*Tensor, error) {
	if n := e.Producer(value); n != nil {
		if n.OpType != "Constant" {
			return nil, nil
		}
		if a, ok := n.Attr("value"); ok && a.T != nil {
			return a.T, nil
		}
		return nil, fmt.Errorf("constant %s has no tensor value", value)
	}
	for _, raw := range e.inits {
		_, _, n := protowire.ConsumeTag(raw)
		v, _ := protowire.ConsumeBytes(raw[n:])
		if tensorNameOf(v) == value {
			return readTensor(v)
		}
	}
	for _, t := range e.NewInits {
		if t.Name == value {
			return t, nil
		}
	}
	return nil, nil
}

// SetConstant makes the Constant node that writes t.Name write t instead
// (its other attributes go).
func (e *Editable) SetConstant(t *Tensor) error {
	n := e.Producer(t.Name)
	if n == nil || n.OpType != "Constant" {
		return fmt.Errorf("no Constant node writes %s", t.Name)
	}
	if err := t.check(); err != nil {
		return err
	}
	n.raw = nil
	n.Attrs = []Attr{TensorAttr("value", t)}
	return nil
}

// Marshal encodes the edited model.
func (e *Editable) Marshal() ([]byte, error) {
	known := map[string]bool{"": true}
	for _, f := range e.graphFields {
		num, typ, n := protowire.ConsumeTag(f)
		if num == graphInput && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(f[n:])
			vi, err := readValueInfo(v)
			if err != nil {
				return nil, err
			}
			known[vi.Name] = true
		}
	}
	for _, raw := range e.inits {
		_, _, n := protowire.ConsumeTag(raw)
		v, _ := protowire.ConsumeBytes(raw[n:])
		known[tensorNameOf(v)] = true
	}
	for _, t := range e.NewInits {
		if err := t.check(); err != nil {
			return nil, err
		}
		known[t.Name] = true
	}
	var graph []byte
	for _, n := range e.Nodes {
		for _, in := range n.Inputs {
			if !known[in] {
				return nil, fmt.Errorf("node %s (%s) reads %q, which nothing produces before it", n.Name, n.OpType, in)
			}
		}
		for _, o := range n.Outputs {
			known[o] = true
		}
		graph = appendBytesField(graph, graphNode, encodeNode(n))
	}
	for _, f := range e.graphFields {
		graph = append(graph, f...)
	}
	for _, f := range e.inits {
		graph = append(graph, f...)
	}
	for _, t := range e.NewInits {
		graph = append(graph, encodeTensorField(graphInitializer, t)...)
	}
	for _, o := range e.Outputs {
		if !known[o.Name] {
			return nil, fmt.Errorf("graph output %s is not produced", o.Name)
		}
		graph = appendBytesField(graph, graphOutput, encodeValueInfo(o))
	}
	var out []byte
	for _, f := range e.modelFields {
		out = append(out, f...)
	}
	return appendBytesField(out, modelGraph, graph), nil
}

// rawFields is fields, handing fn each field's encoding (tag included) as
// well as its bytes.
func rawFields(b []byte, fn func(num protowire.Number, typ protowire.Type, v, raw []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad protobuf tag: %w", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return fmt.Errorf("bad protobuf field %d: %w", num, protowire.ParseError(m))
		}
		var v []byte
		if typ == protowire.BytesType {
			v, _ = protowire.ConsumeBytes(b[n:])
		}
		if err := fn(num, typ, v, b[:n+m]); err != nil {
			return err
		}
		b = b[n+m:]
	}
	return nil
}

// readNode parses a NodeProto, keeping its attributes and any other field
// encoded in raw.
func readNode(b []byte) (*Node, error) {
	n := &Node{}
	err := rawFields(b, func(num protowire.Number, typ protowire.Type, v, raw []byte) error {
		if typ != protowire.BytesType {
			n.raw = append(n.raw, raw)
			return nil
		}
		switch num {
		case nodeInput:
			n.Inputs = append(n.Inputs, string(v))
		case nodeOutput:
			n.Outputs = append(n.Outputs, string(v))
		case nodeName:
			n.Name = string(v)
		case nodeOpType:
			n.OpType = string(v)
		case nodeDomain:
			n.Domain = string(v)
		default:
			n.raw = append(n.raw, raw)
		}
		return nil
	})
	return n, err
}

// rawAttr returns the encoded AttributeProto called name among the
// attributes the node was read with.
func (n *Node) rawAttr(name string) ([]byte, bool) {
	for _, raw := range n.raw {
		num, typ, k := protowire.ConsumeTag(raw)
		if num != nodeAttribute || typ != protowire.BytesType {
			continue
		}
		v, _ := protowire.ConsumeBytes(raw[k:])
		var got string
		_ = fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num == attrName && typ == protowire.BytesType {
				got = string(v)
			}
			return nil
		})
		if got == name {
			return v, true
		}
	}
	return nil, false
}

func tensorNameOf(b []byte) string {
	var name string
	_ = fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == tensorName && typ == protowire.BytesType {
			name = string(v)
		}
		return nil
	})
	return name
}

// Field numbers of TensorProto's typed data.
const (
	tensorFloatData = 4
	tensorInt32Data = 5
	tensorInt64Data = 7
)

// readTensor parses a TensorProto of float32, int64, int32, int8 or uint8,
// from raw_data or the typed repeated fields.
func readTensor(b []byte) (*Tensor, error) {
	t := &Tensor{}
	var raw []byte
	var floats []float32
	var ints []int64
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == tensorDims && typ == protowire.VarintType:
			t.Dims = append(t.Dims, int64(x))
		case num == tensorDims && typ == protowire.BytesType:
			return packedVarints(v, func(x uint64) { t.Dims = append(t.Dims, int64(x)) })
		case num == tensorDataType && typ == protowire.VarintType:
			t.DType = DType(x)
		case num == tensorName && typ == protowire.BytesType:
			t.Name = string(v)
		case num == tensorRawData && typ == protowire.BytesType:
			raw = v
		case num == tensorFloatData && typ == protowire.Fixed32Type:
			floats = append(floats, math.Float32frombits(uint32(x)))
		case num == tensorFloatData && typ == protowire.BytesType:
			for i := 0; i+4 <= len(v); i += 4 {
				floats = append(floats, math.Float32frombits(binary.LittleEndian.Uint32(v[i:])))
			}
		case (num == tensorInt32Data || num == tensorInt64Data) && typ == protowire.VarintType:
			ints = append(ints, int64(x))
		case (num == tensorInt32Data || num == tensorInt64Data) && typ == protowire.BytesType:
			return packedVarints(v, func(x uint64) { ints = append(ints, int64(x)) })
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	n := int(t.Elems())
	switch t.DType {
	case Float:
		if raw != nil {
			if len(raw) != 4*n {
				return nil, fmt.Errorf("tensor %s: %d raw bytes for %d float32s", t.Name, len(raw), n)
			}
			t.Float32 = make([]float32, n)
			for i := range t.Float32 {
				t.Float32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		} else {
			t.Float32 = floats
		}
	case Int64, Int32:
		size := 8
		if t.DType == Int32 {
			size = 4
		}
		if raw != nil {
			if len(raw) != size*n {
				return nil, fmt.Errorf("tensor %s: %d raw bytes for %d values of %s", t.Name, len(raw), n, t.DType)
			}
			ints = make([]int64, n)
			for i := range ints {
				if size == 8 {
					ints[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
				} else {
					ints[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
				}
			}
		}
		if t.DType == Int64 {
			t.Int64 = ints
		} else {
			t.Int32 = make([]int32, len(ints))
			for i, v := range ints {
				t.Int32[i] = int32(v)
			}
		}
	case Uint8, Int8:
		if raw == nil {
			raw = make([]byte, len(ints))
			for i, v := range ints {
				raw[i] = byte(v)
			}
		}
		if t.DType == Uint8 {
			t.Uint8 = append([]uint8(nil), raw...)
		} else {
			t.Int8 = make([]int8, len(raw))
			for i, v := range raw {
				t.Int8[i] = int8(v)
			}
		}
	default:
		return nil, fmt.Errorf("tensor %s: element type %s not supported", t.Name, t.DType)
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

func packedVarints(b []byte, fn func(uint64)) error {
	for len(b) > 0 {
		x, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		fn(x)
		b = b[n:]
	}
	return nil
}

// decodeAttr parses an encoded AttributeProto (Node.rawAttr) of the kinds
// Attr holds.
func decodeAttr(b []byte) (Attr, error) {
	var a Attr
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == attrName && typ == protowire.BytesType:
			a.Name = string(v)
		case num == attrType && typ == protowire.VarintType:
			a.Type = AttrType(x)
		case num == attrF && typ == protowire.Fixed32Type:
			a.F = math.Float32frombits(uint32(x))
		case num == attrI && typ == protowire.VarintType:
			a.I = int64(x)
		case num == attrS && typ == protowire.BytesType:
			a.S = string(v)
		case num == attrT && typ == protowire.BytesType:
			t, err := readTensor(v)
			if err != nil {
				return err
			}
			a.T = t
		case num == attrFloats && typ == protowire.Fixed32Type:
			a.Floats = append(a.Floats, math.Float32frombits(uint32(x)))
		case num == attrFloats && typ == protowire.BytesType:
			for i := 0; i+4 <= len(v); i += 4 {
				a.Floats = append(a.Floats, math.Float32frombits(binary.LittleEndian.Uint32(v[i:])))
			}
		case num == attrInts && typ == protowire.VarintType:
			a.Ints = append(a.Ints, int64(x))
		case num == attrInts && typ == protowire.BytesType:
			return packedVarints(v, func(x uint64) { a.Ints = append(a.Ints, int64(x)) })
		case num == attrStrings && typ == protowire.BytesType:
			a.Strings = append(a.Strings, string(v))
		}
		return nil
	})
	return a, err
}
