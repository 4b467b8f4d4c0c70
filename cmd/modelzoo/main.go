// Command modelzoo writes inferq's built-in models into a models directory:
//
//	modelzoo -out .cache/models [-models echo,digits,resnet18,resnet50] [-ocr-src .cache/ocr]
//
// A model already there, unchanged and made by the same recipe, is skipped,
// so running it again is instant.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/inferq/inferq/internal/models/zoo"
)

func main() {
	out := flag.String("out", os.Getenv("INFERQ_MODELS_DIR"), "models directory to write into (env INFERQ_MODELS_DIR)")
	list := flag.String("models", strings.Join(zoo.Names(), ","), "comma-separated built-in models to make")
	ocrSrc := flag.String("ocr-src", "", "directory holding the PP-OCRv4 files (ch_PP-OCRv4_det_infer.onnx, ch_PP-OCRv4_rec_infer.onnx, ppocr_keys_v1.txt); makes the ocr model when set")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *out == "" {
		fmt.Fprintln(os.Stderr, "modelzoo: -out (or INFERQ_MODELS_DIR) is required")
		os.Exit(2)
	}
	for _, name := range strings.Split(*list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		r, err := zoo.BuildModel(*out, name)
		if err != nil {
			log.Error("build model", "model", name, "err", err)
			os.Exit(1)
		}
		report(log, r)
	}
	if *ocrSrc != "" {
		r, err := zoo.BuildOCRModel(*out, *ocrSrc)
		if err != nil {
			log.Error("build model", "model", "ocr", "err", err)
			os.Exit(1)
		}
		report(log, r)
	}
}

func report(log *slog.Logger, r zoo.Result) {
	msg := "built model"
	if r.Skipped {
		msg = "model up to date"
	}
	log.Info(msg, "model", r.Name, "dir", r.Dir, "bytes", r.Bytes, "elapsed", r.Elapsed.Round(1e6))
}
