// Package ort is inferq's narrow door to ONNX Runtime: it loads the shared
// library once per process, opens sessions pinned to a device, and runs them
// on plain Go slices. Everything above it (the model registry, the OCR
// pipeline, the benchmark harness) speaks in Tensors, never in cgo values.
package ort

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	onnx "github.com/yalue/onnxruntime_go"
)

var (
	initMu   sync.Mutex
	initPath string
)

// Init loads ONNX Runtime from libPath and initializes its environment. It
// may be called many times with the same path; a second, different path is
// an error because one process can hold only one ONNX Runtime.
func Init(libPath string) error {
	initMu.Lock()
	defer initMu.Unlock()
	if initPath != "" {
		if initPath != libPath {
			return fmt.Errorf("onnx runtime already loaded from %s, not %s", initPath, libPath)
		}
		return nil
	}
	if libPath == "" {
		return errors.New("no ONNX Runtime library given: set INFERQ_ORT_LIB (make deps puts it in .cache/ort/libonnxruntime.so.1)")
	}
	if _, err := os.Stat(libPath); err != nil {
		return fmt.Errorf("onnx runtime library: %w (run `make deps`)", err)
	}
	onnx.SetSharedLibraryPath(libPath)
	if err := onnx.InitializeEnvironment(onnx.WithLogLevelError()); err != nil {
		return fmt.Errorf("initialize onnx runtime from %s: %w", libPath, err)
	}
	initPath = libPath
	return nil
}

// Version reports the loaded ONNX Runtime's version, or "" before Init.
func Version() string {
	if !onnx.IsInitialized() {
		return ""
	}
	return onnx.GetVersion()
}

// Device names where a session runs: the CPU, or CUDA device ID.
type Device struct {
	CUDA bool
	ID   int
}

// String renders the device the way --device takes it.
func (d Device) String() string {
	if d.CUDA {
		return "cuda:" + strconv.Itoa(d.ID)
	}
	return "cpu"
}

// ParseDevice reads "cpu" or "cuda:N" (bare "cuda" means cuda:0).
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "" || s == "cpu":
		return Device{}, nil
	case s == "cuda":
		return Device{CUDA: true}, nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "cuda:"))
		if err != nil || n < 0 {
			return Device{}, fmt.Errorf("device %q: want cpu or cuda:N", s)
		}
		return Device{CUDA: true, ID: n}, nil
	}
	return Device{}, fmt.Errorf("device %q: want cpu or cuda:N", s)
}

// Options configure one session.
type Options struct {
	Device Device
	// IntraOpThreads is ONNX Runtime's intra-op pool size; 0 lets it choose
	// (one per core it can see).
	IntraOpThreads int
	// Spin lets idle intra-op threads spin waiting for work, as ONNX
	// Runtime does by default. It is off unless set: in a worker the same
	// cores decode the next batch and talk to S3, Redis and NATS between
	// runs, and spinning threads burn them (the benchmark's profile of an
	// echo worker showed half its CPU spinning in libonnxruntime).
	Spin bool
}

// DType is a tensor element type the fleet moves around.
type DType string

// The element types inferq's models use.
const (
	Float32 DType = "float32"
	Uint8   DType = "uint8"
	Int64   DType = "int64"
)

// Tensor is a dense tensor in row-major order. Exactly one of the data
// slices is set, matching DType.
type Tensor struct {
	Shape   []int64
	DType   DType
	Float32 []float32
	Uint8   []uint8
	Int64   []int64
}

// Elems is the element count that Shape implies.
func (t Tensor) Elems() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// IO describes a session's input or output as the model declares it; -1
// marks a dynamic dimension.
type IO struct {
	Name  string
	DType DType
	Shape []int64
}

// Session is an ONNX Runtime session on one device. Run is safe for
// concurrent use (ONNX Runtime allows concurrent Run calls on a session).
type Session struct {
	s       *onnx.DynamicAdvancedSession
	Inputs  []IO
	Outputs []IO
}

// Open loads the model at path on the device of opts.
func Open(path string, opts Options) (*Session, error) {
	if !onnx.IsInitialized() {
		return nil, errors.New("onnx runtime not initialized: call ort.Init first")
	}
	so, err := onnx.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	defer so.Destroy()
	if opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
			return nil, fmt.Errorf("intra-op threads: %w", err)
		}
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("inter-op threads: %w", err)
	}
	if !opts.Spin {
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, fmt.Errorf("session options: %w", err)
		}
	}
	if opts.Device.CUDA {
		cuda, err := onnx.NewCUDAProviderOptions()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoCUDA, err)
		}
		defer cuda.Destroy()
		if err := cuda.Update(map[string]string{"device_id": strconv.Itoa(opts.Device.ID)}); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoCUDA, err)
		}
		if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoCUDA, err)
		}
	}
	ins, outs, err := onnx.GetInputOutputInfoWithOptions(path, so)
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", path, err)
	}
	s := &Session{Inputs: ios(ins), Outputs: ios(outs)}
	s.s, err = onnx.NewDynamicAdvancedSession(path, names(s.Inputs), names(s.Outputs), so)
	if err != nil {
		return nil, fmt.Errorf("open model %s on %s: %w", path, opts.Device, err)
	}
	return s, nil
}

// ErrNoCUDA says the loaded ONNX Runtime cannot run on a CUDA device.
var ErrNoCUDA = errors.New("the loaded ONNX Runtime library has no usable CUDA execution provider (use a GPU build of libonnxruntime and set INFERQ_ORT_LIB)")

func ios(infos []onnx.InputOutputInfo) []IO {
	out := make([]IO, len(infos))
	for i, in := range infos {
		out[i] = IO{Name: in.Name, DType: dtypeOf(in.DataType), Shape: append([]int64(nil), in.Dimensions...)}
	}
	return out
}

func names(ios []IO) []string {
	out := make([]string, len(ios))
	for i, io := range ios {
		out[i] = io.Name
	}
	return out
}

func dtypeOf(t onnx.TensorElementDataType) DType {
	switch t {
	case onnx.TensorElementDataTypeFloat:
		return Float32
	case onnx.TensorElementDataTypeUint8:
		return Uint8
	case onnx.TensorElementDataTypeInt64:
		return Int64
	}
	return DType(t.String())
}

// Run feeds inputs (in the order of s.Inputs) and returns the outputs (in
// the order of s.Outputs), copied into Go memory.
func (s *Session) Run(inputs []Tensor) ([]Tensor, error) {
	if len(inputs) != len(s.Inputs) {
		return nil, fmt.Errorf("model takes %d inputs, got %d", len(s.Inputs), len(inputs))
	}
	vals := make([]onnx.Value, len(inputs))
	defer func() {
		for _, v := range vals {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, in := range inputs {
		v, err := toValue(in)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", s.Inputs[i].Name, err)
		}
		vals[i] = v
	}
	outs := make([]onnx.Value, len(s.Outputs))
	if err := s.s.Run(vals, outs); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	result := make([]Tensor, len(outs))
	for i, o := range outs {
		t, err := fromValue(o)
		o.Destroy()
		if err != nil {
			for _, rest := range outs[i+1:] {
				rest.Destroy()
			}
			return nil, fmt.Errorf("output %s: %w", s.Outputs[i].Name, err)
		}
		result[i] = t
	}
	return result, nil
}

// Close releases the session.
func (s *Session) Close() error {
	return s.s.Destroy()
}

func toValue(t Tensor) (onnx.Value, error) {
	shape := onnx.NewShape(t.Shape...)
	switch t.DType {
	case Float32:
		return onnx.NewTensor(shape, t.Float32)
	case Uint8:
		return onnx.NewTensor(shape, t.Uint8)
	case Int64:
		return onnx.NewTensor(shape, t.Int64)
	}
	return nil, fmt.Errorf("unsupported dtype %q", t.DType)
}

func fromValue(v onnx.Value) (Tensor, error) {
	shape := append([]int64(nil), v.GetShape()...)
	switch x := v.(type) {
	case *onnx.Tensor[float32]:
		return Tensor{Shape: shape, DType: Float32, Float32: append([]float32(nil), x.GetData()...)}, nil
	case *onnx.Tensor[uint8]:
		return Tensor{Shape: shape, DType: Uint8, Uint8: append([]uint8(nil), x.GetData()...)}, nil
	case *onnx.Tensor[int64]:
		return Tensor{Shape: shape, DType: Int64, Int64: append([]int64(nil), x.GetData()...)}, nil
	}
	return Tensor{}, fmt.Errorf("unsupported output value %T", v)
}
