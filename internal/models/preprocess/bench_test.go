package preprocess

import (
	"image"
	"strconv"
	"testing"
)

// photo is a 4032x3024 (12 MP) 4:2:0 YCbCr image, a phone photo's decode.
func photo() *image.YCbCr {
	m := image.NewYCbCr(image.Rect(0, 0, 4032, 3024), image.YCbCrSubsampleRatio420)
	for i := range m.Y {
		m.Y[i] = uint8(i)
	}
	for i := range m.Cb {
		m.Cb[i], m.Cr[i] = uint8(i/7), uint8(i/13)
	}
	return m
}

func BenchmarkFill(b *testing.B) {
	img := photo()
	for _, s := range []ImageSpec{
		{Width: 224, Height: 224, Resize: ResizeCrop, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}},
		{Width: 28, Height: 28, Resize: ResizeLetterbox, Color: ColorGray, Invert: InvertAuto},
		{Width: 960, Height: 960, Resize: ResizeLetterbox, Color: ColorBGR},
	} {
		dst := make([]float32, s.Len())
		b.Run(s.Resize+"-"+strconv.Itoa(s.Width), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Fill(dst, img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
