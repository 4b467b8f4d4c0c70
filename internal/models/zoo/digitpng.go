package zoo

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// PNG draws the digit as a size x size gray PNG, upscaled by nearest
// neighbour, ink dark on light paper or light on dark: what a client of
// the digits model sends (the tests and the demo use it).
func (d Digit) PNG(size int, darkOnLight bool) ([]byte, error) {
	img := image.NewGray(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			v := uint8(int(d[(y*8/size)*8+x*8/size]) * 255 / 16)
			if darkOnLight {
				v = 255 - v
			}
			img.SetGray(x, y, color.Gray{Y: v})
		}
	}
	var b bytes.Buffer
	err := png.Encode(&b, img)
	return b.Bytes(), err
}
