// Package onnxpb writes (and minimally reads) ONNX models as protobuf,
// encoded by hand with protowire, so that inferq can make its own built-in
// models without generated code or Python.
//
// A Model is a plain in-memory description of the graph: the same value
// that is written to disk can be evaluated by a reference interpreter in
// tests, which is how the model-making tool proves it writes what it means.
package onnxpb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
)

// Defaults written when a Model leaves them zero.
const (
	DefaultIRVersion = 8
	DefaultOpset     = 13
)

// DType is an ONNX TensorProto.DataType.
type DType int32

// The ONNX element types inferq's models use.
const (
	Undefined DType = 0
	Float     DType = 1
	Uint8     DType = 2
	Int8      DType = 3
	Int32     DType = 6
	Int64     DType = 7
	Bool      DType = 9
	Double    DType = 11
)

// String names the type the way manifests and the ort package do.
func (d DType) String() string {
	switch d {
	case Float:
		return "float32"
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Bool:
		return "bool"
	case Double:
		return "float64"
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// Dim is one dimension of a declared shape: a fixed size, or a symbolic
// name (Param) for a dynamic one.
type Dim struct {
	Value int64
	Param string
}

// Shape builds a declared shape from ints (fixed sizes) and strings
// (symbolic dims such as "N"); it panics on any other type, because shapes
// are written by the programmer, not read from users.
func Shape(dims ...any) []Dim {
	out := make([]Dim, len(dims))
	for i, d := range dims {
		switch v := d.(type) {
		case int:
			out[i] = Dim{Value: int64(v)}
		case int64:
			out[i] = Dim{Value: v}
		case string:
			out[i] = Dim{Param: v}
		default:
			panic(fmt.Sprintf("onnxpb.Shape: dim %d has type %T, want int or string", i, d))
		}
	}
	return out
}

// ValueInfo declares a graph input or output.
type ValueInfo struct {
	Name  string
	DType DType
	Shape []Dim
}

// Tensor is a constant tensor (an initializer or a tensor attribute).
// Exactly one data slice is set, matching DType; it is written as raw_data
// (little-endian).
type Tensor struct {
	Name    string
	DType   DType
	Dims    []int64
	Float32 []float32
	Int64   []int64
	Int32   []int32
	Uint8   []uint8
	Int8    []int8
}

// Elems is the element count that Dims implies.
func (t *Tensor) Elems() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// FloatTensor makes a float32 tensor.
func FloatTensor(name string, dims []int64, data []float32) *Tensor {
	return &Tensor{Name: name, DType: Float, Dims: dims, Float32: data}
}

// Int64Tensor makes an int64 tensor.
func Int64Tensor(name string, dims []int64, data []int64) *Tensor {
	return &Tensor{Name: name, DType: Int64, Dims: dims, Int64: data}
}

// AttrType is an ONNX AttributeProto.AttributeType.
type AttrType int32

// The attribute kinds the writer supports.
const (
	AttrFloat   AttrType = 1
	AttrInt     AttrType = 2
	AttrString  AttrType = 3
	AttrTensor  AttrType = 4
	AttrFloats  AttrType = 6
	AttrInts    AttrType = 7
	AttrStrings AttrType = 8
)

// Attr is one node attribute; Type says which field holds its value.
type Attr struct {
	Name    string
	Type    AttrType
	F       float32
	I       int64
	S       string
	T       *Tensor
	Floats  []float32
	Ints    []int64
	Strings []string
}

// Int makes an int attribute.
func Int(name string, v int64) Attr { return Attr{Name: name, Type: AttrInt, I: v} }

// Float32 makes a float attribute.
func Float32(name string, v float32) Attr { return Attr{Name: name, Type: AttrFloat, F: v} }

// Ints makes an ints attribute.
func Ints(name string, v ...int64) Attr { return Attr{Name: name, Type: AttrInts, Ints: v} }

// Floats makes a floats attribute.
func Floats(name string, v ...float32) Attr { return Attr{Name: name, Type: AttrFloats, Floats: v} }

// String makes a string attribute.
func String(name, v string) Attr { return Attr{Name: name, Type: AttrString, S: v} }

// Strings makes a strings attribute.
func Strings(name string, v ...string) Attr { return Attr{Name: name, Type: AttrStrings, Strings: v} }

// TensorAttr makes a tensor attribute.
func TensorAttr(name string, t *Tensor) Attr { return Attr{Name: name, Type: AttrTensor, T: t} }

// Node is one operator application.
type Node struct {
	OpType  string
	Name    string
	Domain  string
	Inputs  []string
	Outputs []string
	Attrs   []Attr
	// raw holds encoded fields of a node read from a file (Open): its
	// attributes and doc string, written back as they were, after Attrs.
	raw [][]byte
}

// Attr returns the attribute called name, if the node has it: one in
// Attrs, or one it was read with (Editable's nodes), decoded. An attribute
// that does not decode counts as absent.
func (n *Node) Attr(name string) (Attr, bool) {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a, true
		}
	}
	if raw, ok := n.rawAttr(name); ok {
		if a, err := decodeAttr(raw); err == nil {
			return a, true
		}
	}
	return Attr{}, false
}

// AttrInt returns an int attribute, or def when it is absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a, ok := n.Attr(name); ok {
		return a.I
	}
	return def
}

// AttrFloat returns a float attribute, or def when it is absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a, ok := n.Attr(name); ok {
		return a.F
	}
	return def
}

// AttrInts returns an ints attribute, or def when it is absent.
func (n *Node) AttrInts(name string, def []int64) []int64 {
	if a, ok := n.Attr(name); ok {
		return a.Ints
	}
	return def
}

// Graph is a computation graph in topological node order.
type Graph struct {
	Name         string
	Doc          string
	Nodes        []*Node
	Initializers []*Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
}

// Node appends a node and returns it; its name defaults to its first
// output.
func (g *Graph) Node(op string, inputs, outputs []string, attrs ...Attr) *Node {
	n := &Node{OpType: op, Inputs: inputs, Outputs: outputs, Attrs: attrs}
	if len(outputs) > 0 {
		n.Name = outputs[0]
	}
	g.Nodes = append(g.Nodes, n)
	return n
}

// Op appends a single-output node named out and returns out, for chaining.
func (g *Graph) Op(op, out string, inputs []string, attrs ...Attr) string {
	g.Node(op, inputs, []string{out}, attrs...)
	return out
}

// Init adds an initializer and returns its name.
func (g *Graph) Init(t *Tensor) string {
	g.Initializers = append(g.Initializers, t)
	return t.Name
}

// Initializer finds an initializer by name.
func (g *Graph) Initializer(name string) *Tensor {
	for _, t := range g.Initializers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Model is an ONNX model with one graph.
type Model struct {
	IRVersion       int64 // DefaultIRVersion when 0
	Opset           int64 // default-domain opset; DefaultOpset when 0
	ProducerName    string
	ProducerVersion string
	Doc             string
	Metadata        map[string]string
	Graph           Graph
}

// Check catches the mistakes the writer can see on its own: tensors whose
// data does not fill their dims, and nodes that read a value nothing
// produces.
func (m *Model) Check() error {
	known := map[string]bool{"": true}
	for _, in := range m.Graph.Inputs {
		known[in.Name] = true
	}
	for _, t := range m.Graph.Initializers {
		if err := t.check(); err != nil {
			return err
		}
		known[t.Name] = true
	}
	for _, n := range m.Graph.Nodes {
		for _, in := range n.Inputs {
			if !known[in] {
				return fmt.Errorf("node %s (%s) reads %q, which nothing produces before it", n.Name, n.OpType, in)
			}
		}
		for _, a := range n.Attrs {
			if a.Type == AttrTensor {
				if err := a.T.check(); err != nil {
					return err
				}
			}
		}
		for _, out := range n.Outputs {
			known[out] = true
		}
	}
	for _, out := range m.Graph.Outputs {
		if !known[out.Name] {
			return fmt.Errorf("graph output %q is never produced", out.Name)
		}
	}
	return nil
}

func (t *Tensor) check() error {
	if t == nil {
		return errors.New("nil tensor")
	}
	var n int
	switch t.DType {
	case Float:
		n = len(t.Float32)
	case Int64:
		n = len(t.Int64)
	case Int32:
		n = len(t.Int32)
	case Uint8:
		n = len(t.Uint8)
	case Int8:
		n = len(t.Int8)
	default:
		return fmt.Errorf("tensor %s: unsupported dtype %s", t.Name, t.DType)
	}
	if int64(n) != t.Elems() {
		return fmt.Errorf("tensor %s: %d elements for dims %v", t.Name, n, t.Dims)
	}
	return nil
}

// Field numbers of onnx.proto.
const (
	modelIRVersion       = 1
	modelProducerName    = 2
	modelProducerVersion = 3
	modelDoc             = 6
	modelGraph           = 7
	modelOpsetImport     = 8
	modelMetadataProps   = 14

	opsetDomain  = 1
	opsetVersion = 2

	graphNode        = 1
	graphName        = 2
	graphInitializer = 5
	graphDoc         = 10
	graphInput       = 11
	graphOutput      = 12

	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDomain    = 7

	attrName    = 1
	attrF       = 2
	attrI       = 3
	attrS       = 4
	attrT       = 5
	attrFloats  = 7
	attrInts    = 8
	attrStrings = 9
	attrType    = 20

	tensorDims     = 1
	tensorDataType = 2
	tensorName     = 8
	tensorRawData  = 9

	valueInfoName = 1
	valueInfoType = 2

	typeTensorType = 1
	tensorElemType = 1
	tensorShape    = 2
	shapeDim       = 1
	dimValue       = 1
	dimParam       = 2
)

// Marshal encodes the model as an ONNX ModelProto.
func (m *Model) Marshal() ([]byte, error) {
	chunks, err := m.chunks()
	if err != nil {
		return nil, err
	}
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	out := make([]byte, 0, n)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out, nil
}

// WriteTo streams the encoded model to w without building it in one
// buffer (ResNet-50's weights alone are 100 MB).
func (m *Model) WriteTo(w io.Writer) (int64, error) {
	chunks, err := m.chunks()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, c := range chunks {
		n, err := w.Write(c)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// WriteFile writes the model to path (plainly; callers wanting atomicity
// write into a temporary directory and rename it).
func (m *Model) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if _, err := m.WriteTo(bw); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// chunks encodes the model as a list of byte slices whose concatenation is
// the ModelProto; the graph's sub-messages stay separate so that big
// initializers are encoded once and never copied into a larger buffer.
func (m *Model) chunks() ([][]byte, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	ir, opset := m.IRVersion, m.Opset
	if ir == 0 {
		ir = DefaultIRVersion
	}
	if opset == 0 {
		opset = DefaultOpset
	}
	var head []byte
	head = appendVarintField(head, modelIRVersion, uint64(ir))
	head = appendStringField(head, modelProducerName, m.ProducerName)
	head = appendStringField(head, modelProducerVersion, m.ProducerVersion)
	head = appendStringField(head, modelDoc, m.Doc)
	var os []byte
	os = appendStringField(os, opsetDomain, "")
	os = appendVarintField(os, opsetVersion, uint64(opset))
	head = appendBytesField(head, modelOpsetImport, os)
	for _, k := range sortedKeys(m.Metadata) {
		var kv []byte
		kv = appendStringField(kv, 1, k)
		kv = appendStringField(kv, 2, m.Metadata[k])
		head = appendBytesField(head, modelMetadataProps, kv)
	}

	g := &m.Graph
	var graph [][]byte
	var gsmall []byte
	for _, n := range g.Nodes {
		gsmall = appendBytesField(gsmall, graphNode, encodeNode(n))
	}
	gsmall = appendStringField(gsmall, graphName, g.Name)
	graph = append(graph, gsmall)
	for _, t := range g.Initializers {
		graph = append(graph, encodeTensorField(graphInitializer, t))
	}
	var gtail []byte
	gtail = appendStringField(gtail, graphDoc, g.Doc)
	for _, v := range g.Inputs {
		gtail = appendBytesField(gtail, graphInput, encodeValueInfo(v))
	}
	for _, v := range g.Outputs {
		gtail = appendBytesField(gtail, graphOutput, encodeValueInfo(v))
	}
	graph = append(graph, gtail)

	glen := 0
	for _, c := range graph {
		glen += len(c)
	}
	head = protowire.AppendTag(head, modelGraph, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(glen))
	return append([][]byte{head}, graph...), nil
}

func encodeNode(n *Node) []byte {
	var b []byte
	for _, in := range n.Inputs {
		b = protowire.AppendTag(b, nodeInput, protowire.BytesType)
		b = protowire.AppendString(b, in)
	}
	for _, out := range n.Outputs {
		b = protowire.AppendTag(b, nodeOutput, protowire.BytesType)
		b = protowire.AppendString(b, out)
	}
	b = appendStringField(b, nodeName, n.Name)
	b = appendStringField(b, nodeOpType, n.OpType)
	for _, a := range n.Attrs {
		b = appendBytesField(b, nodeAttribute, encodeAttr(a))
	}
	for _, f := range n.raw {
		b = append(b, f...)
	}
	b = appendStringField(b, nodeDomain, n.Domain)
	return b
}

func encodeAttr(a Attr) []byte {
	var b []byte
	b = appendStringField(b, attrName, a.Name)
	switch a.Type {
	case AttrFloat:
		b = protowire.AppendTag(b, attrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	case AttrInt:
		b = protowire.AppendTag(b, attrI, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	case AttrString:
		b = protowire.AppendTag(b, attrS, protowire.BytesType)
		b = protowire.AppendString(b, a.S)
	case AttrTensor:
		b = append(b, encodeTensorField(attrT, a.T)...)
	case AttrFloats:
		for _, f := range a.Floats {
			b = protowire.AppendTag(b, attrFloats, protowire.Fixed32Type)
			b = protowire.AppendFixed32(b, math.Float32bits(f))
		}
	case AttrInts:
		for _, i := range a.Ints {
			b = protowire.AppendTag(b, attrInts, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(i))
		}
	case AttrStrings:
		for _, s := range a.Strings {
			b = protowire.AppendTag(b, attrStrings, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	b = protowire.AppendTag(b, attrType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(a.Type))
	return b
}

// encodeTensorField encodes t as field num of its parent, in one
// allocation sized for its raw data.
func encodeTensorField(num protowire.Number, t *Tensor) []byte {
	var hdr []byte
	for _, d := range t.Dims {
		hdr = protowire.AppendTag(hdr, tensorDims, protowire.VarintType)
		hdr = protowire.AppendVarint(hdr, uint64(d))
	}
	hdr = protowire.AppendTag(hdr, tensorDataType, protowire.VarintType)
	hdr = protowire.AppendVarint(hdr, uint64(t.DType))
	hdr = appendStringField(hdr, tensorName, t.Name)
	var raw int
	switch t.DType {
	case Float:
		raw = 4 * len(t.Float32)
	case Int64:
		raw = 8 * len(t.Int64)
	case Int32:
		raw = 4 * len(t.Int32)
	case Uint8:
		raw = len(t.Uint8)
	case Int8:
		raw = len(t.Int8)
	}
	rawHdr := protowire.SizeTag(tensorRawData) + protowire.SizeVarint(uint64(raw))
	body := len(hdr) + rawHdr + raw
	b := make([]byte, 0, protowire.SizeTag(num)+protowire.SizeVarint(uint64(body))+body)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(body))
	b = append(b, hdr...)
	b = protowire.AppendTag(b, tensorRawData, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(raw))
	switch t.DType {
	case Float:
		for _, f := range t.Float32 {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
	case Int64:
		for _, v := range t.Int64 {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	case Int32:
		for _, v := range t.Int32 {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		}
	case Uint8:
		b = append(b, t.Uint8...)
	case Int8:
		for _, v := range t.Int8 {
			b = append(b, byte(v))
		}
	}
	return b
}

func encodeValueInfo(v ValueInfo) []byte {
	var shape []byte
	for _, d := range v.Shape {
		var dim []byte
		if d.Param != "" {
			dim = appendStringField(dim, dimParam, d.Param)
		} else {
			dim = protowire.AppendTag(dim, dimValue, protowire.VarintType)
			dim = protowire.AppendVarint(dim, uint64(d.Value))
		}
		shape = appendBytesField(shape, shapeDim, dim)
	}
	var tt []byte
	tt = protowire.AppendTag(tt, tensorElemType, protowire.VarintType)
	tt = protowire.AppendVarint(tt, uint64(v.DType))
	if v.Shape != nil {
		tt = protowire.AppendTag(tt, tensorShape, protowire.BytesType)
		tt = protowire.AppendBytes(tt, shape)
	}
	var typ []byte
	typ = appendBytesField(typ, typeTensorType, tt)
	var b []byte
	b = appendStringField(b, valueInfoName, v.Name)
	b = appendBytesField(b, valueInfoType, typ)
	return b
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendStringField writes a string field, leaving out empty ones as
// proto2 optional fields may be.
func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}
