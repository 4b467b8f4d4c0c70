package ocr

import (
	"errors"
	"fmt"

	"github.com/inferq/inferq/internal/models/onnxpb"
)

// LatinHead lists, in class order, the recognizer classes that decoding
// under LatinClasses can emit: the blank, the dictionary's Latin
// characters and the space class. A recognizer whose CTC head is pruned to
// these classes (PruneHead) reads what the full one reads under the Latin
// mask, for a fraction of the head's work (PP-OCRv4's head scores 6625
// classes per step, Latin text needs 127 of them).
func LatinHead(dict []string) []int {
	allow := LatinClasses(dict)
	keep := make([]int, 0, 320)
	for c, ok := range allow {
		if ok {
			keep = append(keep, c)
		}
	}
	return keep
}

// PruneHead rewrites an encoded CTC recognizer (PP-OCR's: ... MatMul by a
// constant [D, C] weight, Add a constant [C] bias, Softmax over the last
// axis, the graph's output) so that it scores only the classes keep lists,
// in that order: the weight's and bias's other columns go, and the
// output's last dimension becomes len(keep). The softmax then spreads one
// over the kept classes alone, so each step's probabilities are the full
// model's renormalized over them: the same order among kept classes, hence
// the same greedy decoding under a mask that allows only kept classes.
func PruneHead(model []byte, keep []int) ([]byte, error) {
	e, err := onnxpb.Open(model)
	if err != nil {
		return nil, fmt.Errorf("prune ctc head: %w", err)
	}
	if err := pruneHead(e, keep); err != nil {
		return nil, err
	}
	return e.Marshal()
}

func pruneHead(e *onnxpb.Editable, keep []int) error {
	if len(e.Outputs) != 1 {
		return fmt.Errorf("prune ctc head: want one graph output, have %d", len(e.Outputs))
	}
	out := &e.Outputs[0]
	sm := e.Producer(out.Name)
	if sm == nil || sm.OpType != "Softmax" || len(sm.Inputs) != 1 {
		return fmt.Errorf("prune ctc head: output %s is not a Softmax's", out.Name)
	}
	if axis := sm.AttrInt("axis", -1); axis != -1 && axis != int64(len(out.Shape))-1 {
		return fmt.Errorf("prune ctc head: softmax over axis %d, not the last", axis)
	}
	add := e.Producer(sm.Inputs[0])
	if add == nil || add.OpType != "Add" || len(add.Inputs) != 2 || len(e.Consumers(add.Outputs[0])) != 1 {
		return fmt.Errorf("prune ctc head: the softmax's input is not a bias Add read by it alone")
	}
	mm, bias := e.Producer(add.Inputs[0]), add.Inputs[1]
	if mm == nil || mm.OpType != "MatMul" {
		mm, bias = e.Producer(add.Inputs[1]), add.Inputs[0]
	}
	if mm == nil || mm.OpType != "MatMul" || len(mm.Inputs) != 2 || len(e.Consumers(mm.Outputs[0])) != 1 {
		return fmt.Errorf("prune ctc head: the bias Add does not follow a MatMul read by it alone")
	}
	w, err := e.Constant(mm.Inputs[1])
	if err != nil || w == nil || w.DType != onnxpb.Float || len(w.Dims) != 2 {
		return fmt.Errorf("prune ctc head: the MatMul's weight %s is not a constant float32 matrix (%v)", mm.Inputs[1], err)
	}
	b, err := e.Constant(bias)
	if err != nil || b == nil || b.DType != onnxpb.Float || len(b.Float32) != int(w.Dims[1]) {
		return fmt.Errorf("prune ctc head: the bias %s is not a constant float32 vector of %d (%v)", bias, w.Dims[1], err)
	}
	if len(e.Consumers(w.Name)) != 1 || len(e.Consumers(b.Name)) != 1 {
		return fmt.Errorf("prune ctc head: the head's weight or bias is shared")
	}
	D, C := int(w.Dims[0]), int(w.Dims[1])
	if len(keep) == 0 {
		return fmt.Errorf("prune ctc head: no classes to keep")
	}
	for i, c := range keep {
		if c < 0 || c >= C || i > 0 && c <= keep[i-1] {
			return fmt.Errorf("prune ctc head: kept classes must rise within [0, %d), got %d after %v", C, c, keep[:i])
		}
	}
	K := len(keep)
	nw := make([]float32, D*K)
	for d := 0; d < D; d++ {
		row := w.Float32[d*C : (d+1)*C]
		for k, c := range keep {
			nw[d*K+k] = row[c]
		}
	}
	nb := make([]float32, K)
	for k, c := range keep {
		nb[k] = b.Float32[c]
	}
	if err := e.SetConstant(onnxpb.FloatTensor(w.Name, []int64{int64(D), int64(K)}, nw)); err != nil {
		return fmt.Errorf("prune ctc head: %w", err)
	}
	if err := e.SetConstant(onnxpb.FloatTensor(b.Name, []int64{int64(K)}, nb)); err != nil {
		return fmt.Errorf("prune ctc head: %w", err)
	}
	if n := len(out.Shape); n > 0 {
		out.Shape[n-1] = onnxpb.Dim{Value: int64(K)}
	}
	return nil
}

// headDecoder decodes with dict and allow the output of a recognizer whose
// head scores either every class (blank, dict, space) or only LatinHead's
// (a head pruned by PruneHead): the pruned head's classes are mapped back
// to their characters, and allow to the classes kept.
func headDecoder(dict []string, allow []bool, rule SpaceRule) decodeFunc {
	var keep []int
	var subDict []string
	var subAllow []bool
	return func(probs []float32, T, C int, ink lineInk) (string, float32) {
		if C == len(dict)+2 {
			return decodeWithInk(probs, T, C, dict, allow, rule, ink)
		}
		if keep == nil {
			keep = LatinHead(dict)
			subDict, subAllow = prunedDict(dict, allow, keep)
		}
		if C != len(keep) {
			// Neither head: read it as the dictionary says, as before.
			return decodeWithInk(probs, T, C, dict, allow, rule, ink)
		}
		return decodeWithInk(probs, T, C, subDict, subAllow, rule, ink)
	}
}

// ErrLatinHead says that the characters asked for (Params.Allow) include
// some that a recognizer pruned to LatinHead cannot read.
var ErrLatinHead = errors.New("the recognizer's head is pruned to the Latin classes")

// checkHead refuses a mask that asks a Latin-pruned head (C classes wide)
// for classes it no longer has, rather than let them go unread in
// silence (the ocr pipeline reads such a charset with the multilingual
// recognizer).
func checkHead(dict []string, allow []bool, C int) error {
	if C == len(dict)+2 || C != len(LatinHead(dict)) {
		return nil
	}
	if ok, missing := WithinLatinHead(dict, allow); !ok {
		return fmt.Errorf("%w: it cannot read %q (point files.rec at the multilingual recognizer, rec-multilingual.onnx)", ErrLatinHead, missing)
	}
	return nil
}

// WithinLatinHead says whether a recognizer pruned to LatinHead scores
// every class that allow marks (nil: every class) and, if not, names the
// first character it cannot read.
func WithinLatinHead(dict []string, allow []bool) (ok bool, missing string) {
	kept := make([]bool, len(dict)+2)
	for _, c := range LatinHead(dict) {
		kept[c] = true
	}
	for c := range kept {
		if (allow == nil || c < len(allow) && allow[c]) && !kept[c] {
			return false, dict[c-1]
		}
	}
	return true, ""
}

// prunedDict is the dictionary and the mask of a head pruned to keep
// (blank first, space last, characters between).
func prunedDict(dict []string, allow []bool, keep []int) ([]string, []bool) {
	sub := make([]string, 0, len(keep))
	for _, c := range keep {
		if c >= 1 && c <= len(dict) {
			sub = append(sub, dict[c-1])
		}
	}
	if allow == nil {
		return sub, nil
	}
	subAllow := make([]bool, len(keep))
	for k, c := range keep {
		subAllow[k] = c < len(allow) && allow[c]
	}
	return sub, subAllow
}

// DerivedModelsVersion names what LatinRecognizer and FastDetector make;
// it changes whenever their output would, so that a model built by older
// ones is rebuilt.
const DerivedModelsVersion = "latin-rec/3+fast-det/2"

// LatinRecognizer makes, from PP-OCR's multilingual recognizer and its
// dictionary, the recognizer the fleet reads Latin text with: the same
// network with its CTC head pruned to LatinHead(dict) (PruneHead), and
// its backbone's scalar affines and spelled-out hardswish folded into the
// convs (foldAffines). Decoding knows such a head by its width and maps
// its classes back to the dictionary, so the model's manifest keeps the
// full dictionary.
func LatinRecognizer(model []byte, dict []string) ([]byte, error) {
	e, err := onnxpb.Open(model)
	if err != nil {
		return nil, fmt.Errorf("latin recognizer: %w", err)
	}
	if err := pruneHead(e, LatinHead(dict)); err != nil {
		return nil, err
	}
	if _, _, _, err := foldAffines(e); err != nil {
		return nil, fmt.Errorf("latin recognizer: %w", err)
	}
	return e.Marshal()
}

// FastDetector makes, from PP-OCR's detection graph, the same network with
// its backbone's scalar affines and spelled-out hardswish folded into the
// convs (foldAffines), as LatinRecognizer does for the recognizer.
func FastDetector(model []byte) ([]byte, error) {
	e, err := onnxpb.Open(model)
	if err != nil {
		return nil, fmt.Errorf("fast detector: %w", err)
	}
	if _, _, _, err := foldAffines(e); err != nil {
		return nil, fmt.Errorf("fast detector: %w", err)
	}
	return e.Marshal()
}
