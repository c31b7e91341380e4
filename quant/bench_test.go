package quant

import (
	"testing"
)

// Benchmarks encode and decode 16 rows of 4096 Gaussian values; MB/s counts
// float32 input (Quantize) or output (Dequantize) bytes.

const benchNe0, benchRows = 4096, 16

func BenchmarkQuantize(b *testing.B) {
	x := gaussian(21, benchNe0*benchRows, 0.02)
	for _, typ := range allTypes {
		b.Run(typ.String(), func(b *testing.B) {
			rs, _ := RowSize(typ, benchNe0)
			dst := make([]byte, rs*benchRows)
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if err := QuantizeRows(typ, dst, x, benchNe0, unweighted(typ, benchNe0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkQuantizeImatrix(b *testing.B) {
	x := gaussian(22, benchNe0*benchRows, 0.02)
	im := testImatrix(23, benchNe0)
	for _, typ := range allTypes {
		if !hasImatrixPath(typ) {
			continue
		}
		b.Run(typ.String(), func(b *testing.B) {
			rs, _ := RowSize(typ, benchNe0)
			dst := make([]byte, rs*benchRows)
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if err := QuantizeRows(typ, dst, x, benchNe0, im); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDequantize(b *testing.B) {
	x := gaussian(24, benchNe0*benchRows, 0.02)
	for _, typ := range allTypes {
		b.Run(typ.String(), func(b *testing.B) {
			q, err := Quantize(typ, x, benchNe0, unweighted(typ, benchNe0))
			if err != nil {
				b.Fatal(err)
			}
			out := make([]float32, len(x))
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if err := DequantizeInto(typ, out, q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
