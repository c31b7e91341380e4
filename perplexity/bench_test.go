package perplexity

import "testing"

func benchRow(nVocab int) []float32 {
	row := make([]float32, nVocab)
	noisyLogits(0, 0)(row, []int32{3, 4})
	return row
}

// The per-position kernels run once per scored token over the whole
// vocabulary; the byte rate is of the logits read.
func BenchmarkTokenNLL(b *testing.B) {
	row := benchRow(32000)
	b.SetBytes(int64(4 * len(row)))
	for b.Loop() {
		tokenNLL(row, 5)
	}
}

func BenchmarkEncodeLogProbs(b *testing.B) {
	row := benchRow(32000)
	dst := make([]uint16, rowLen(len(row)))
	b.SetBytes(int64(4 * len(row)))
	for b.Loop() {
		encodeLogProbs(dst, row, 5)
	}
}

func BenchmarkComparePosition(b *testing.B) {
	row := benchRow(32000)
	base := make([]uint16, rowLen(len(row)))
	encodeLogProbs(base, row, 5)
	b.SetBytes(int64(4 * len(row)))
	for b.Loop() {
		comparePosition(row, base, 5)
	}
}
