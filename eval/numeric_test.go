package eval

import (
	"testing"
)

func BenchmarkSoftmax(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i%97) * 0.1
	}
	y := make([]float32, len(x))
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		copy(y, x)
		softmaxInPlace(y)
	}
}
