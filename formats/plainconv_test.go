package formats

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/llqt/llqt/formats/block"
	"github.com/llqt/llqt/formats/ggml"
)

// TestBF16ToF16Exhaustive checks every bfloat16 bit pattern, alone in a
// group of four, among normal values, and in the tail, against the float32
// path (PlainCodec's Decode then Encode).
func TestBF16ToF16Exhaustive(t *testing.T) {
	src := make([]byte, 2*(1<<16))
	for h := range 1 << 16 {
		binary.LittleEndian.PutUint16(src[2*h:], uint16(h))
	}
	f, err := PlainCodec{}.Decode(ggml.TypeBF16, src, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	want, err := PlainCodec{}.Encode(ggml.TypeF16, f, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, in []byte, at int, h int) {
		t.Helper()
		out := make([]byte, len(in))
		BF16ToF16(out, in)
		if got := binary.LittleEndian.Uint16(out[2*at:]); got != binary.LittleEndian.Uint16(want[2*h:]) {
			t.Fatalf("%s: bf16 %#04x: got half %#04x, want %#04x", what, h, got, binary.LittleEndian.Uint16(want[2*h:]))
		}
	}
	const one = 0x3f80 // 1.0, on the fast path
	for h := range 1 << 16 {
		group := make([]byte, 8)
		for k := range 4 {
			binary.LittleEndian.PutUint16(group[2*k:], uint16(h))
		}
		check("group of four", group, 2, h)
		for k := range 4 {
			binary.LittleEndian.PutUint16(group[2*k:], one)
		}
		binary.LittleEndian.PutUint16(group[6:], uint16(h))
		check("among normals", group, 3, h)
		tail := make([]byte, 10)
		binary.LittleEndian.PutUint16(tail[8:], uint16(h))
		check("tail", tail, 4, h)
	}
	// The whole table in one call too.
	out := make([]byte, len(src))
	BF16ToF16(out, src)
	if !bytes.Equal(out, want) {
		t.Fatal("bulk conversion differs from the float32 path")
	}
}

// TestConvertPlainMatchesCodec compares every pair of plain types with
// PlainCodec's Decode and Encode on random bit patterns.
func TestConvertPlainMatchesCodec(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	types := []ggml.Type{ggml.TypeF32, ggml.TypeF16, ggml.TypeBF16}
	const n = 4099
	for _, from := range types {
		src := make([]byte, n*from.TypeSize())
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		for _, to := range types {
			f, err := PlainCodec{}.Decode(from, src, n)
			if err != nil {
				t.Fatal(err)
			}
			want, err := PlainCodec{}.Encode(to, f, n)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, n*to.TypeSize())
			if err := ConvertPlain(to, got, from, src); err != nil {
				t.Fatal(err)
			}
			if from == to {
				want = src // a copy: NaN payloads pass through as the writer's copy does
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s → %s differs from Decode+Encode", from, to)
			}
		}
	}
	if err := ConvertPlain(ggml.TypeF16, make([]byte, 2), ggml.TypeF32, make([]byte, 8)); err == nil {
		t.Error("size mismatch accepted")
	}
	if err := ConvertPlain(ggml.TypeQ8_0, nil, ggml.TypeF32, nil); err == nil {
		t.Error("Q8_0 accepted")
	}
}

func BenchmarkBF16ToF16(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := make([]byte, 2<<20)
	for i := 0; i < len(src); i += 2 {
		binary.LittleEndian.PutUint16(src[i:], block.FloatToBF16(float32(rng.NormFloat64()*0.02)))
	}
	dst := make([]byte, len(src))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		BF16ToF16(dst, src)
	}
}
