package perplexity

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeBase runs the fake model over toks and returns the base file bytes.
func makeBase(t testing.TB, m Model, toks []int32, nCtx int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Perplexity(context.Background(), m, toks, Options{NCtx: nCtx, BaseOut: &buf}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBaseLayout checks the bytes against llama.cpp's layout, read back
// with encoding/binary independently of our reader.
func TestBaseLayout(t *testing.T) {
	const nVocab, nCtx = 33, 16
	toks := pseudoText(3*nCtx+9, nVocab, 2)
	m := &fakeModel{nVocab: nVocab, logits: noisyLogits(0, 0)}
	b := makeBase(t, m, toks, nCtx)

	var hdr struct {
		Magic          [8]byte
		NCtx           uint32
		NVocab, NChunk int32
	}
	r := bytes.NewReader(b)
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		t.Fatal(err)
	}
	if string(hdr.Magic[:]) != "_logits_" || hdr.NCtx != nCtx || hdr.NVocab != nVocab || hdr.NChunk != 3 {
		t.Fatalf("header %+v", hdr)
	}
	stored := make([]int32, nCtx*3)
	if err := binary.Read(r, binary.LittleEndian, stored); err != nil {
		t.Fatal(err)
	}
	// The tokens are stored as tokenized: no BOS replacement.
	for i := range stored {
		if stored[i] != toks[i] {
			t.Fatalf("token %d stored as %d, want %d", i, stored[i], toks[i])
		}
	}
	nv := 2*((nVocab+1)/2) + 4
	if nv != 38 {
		t.Fatalf("row length %d", nv)
	}
	rows := make([]uint16, 3*(nCtx-1-nCtx/2)*nv)
	if err := binary.Read(r, binary.LittleEndian, rows); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Fatalf("%d trailing bytes", r.Len())
	}
	// Each row: float32 scale, float32 min log-prob, log-probs, one padding zero.
	// Recompute row 0 of chunk 1 from the model and compare log-probs.
	hist := toks[nCtx : nCtx+nCtx/2+1] // makeBase does not replace BOS
	logits := make([]float32, nVocab)
	m.logits(logits, hist)
	row := rows[(nCtx-1-nCtx/2)*nv:][:nv]
	scale := math.Float32frombits(uint32(row[0]) | uint32(row[1])<<16)
	minLP := math.Float32frombits(uint32(row[2]) | uint32(row[3])<<16)
	if row[nv-1] != 0 {
		t.Errorf("padding value %d, want 0", row[nv-1])
	}
	maxL := maxOf(logits)
	lse := math.Log(sumExp(logits, maxL))
	wantScale := float32(16.0 / 65535) // these logits span more than 16
	if math.Abs(float64(scale-wantScale)) > 1e-9 {
		t.Errorf("scale %v, want %v", scale, wantScale)
	}
	if want := -16 - lse; math.Abs(float64(minLP)-want) > 1e-5 {
		t.Errorf("min log-prob %v, want %v", minLP, want)
	}
	for i, l := range logits {
		lp := float64(l-maxL) - lse
		got := float64(scale)*float64(row[4+i]) + float64(minLP)
		if lp <= float64(minLP) {
			if row[4+i] != 0 {
				t.Errorf("log-prob %d (%v) below the floor stored as %d", i, lp, row[4+i])
			}
			continue
		}
		if math.Abs(got-lp) > float64(scale)*0.51+1e-5 {
			t.Errorf("log-prob %d: stored %v, true %v", i, got, lp)
		}
	}
}

func TestEncodeLogProbsFlatRow(t *testing.T) {
	// All logits equal: scale 0, every value 0, min log-prob = −ln V.
	row := make([]uint16, rowLen(5))
	for i := range row {
		row[i] = 0xffff
	}
	nll := encodeLogProbs(row, []float32{2, 2, 2, 2, 2}, 3)
	scale, minLP := decodeHeader(row)
	if scale != 0 || math.Abs(float64(minLP)+math.Log(5)) > 1e-6 || math.Abs(float64(nll)-math.Log(5)) > 1e-6 {
		t.Errorf("scale %v min %v nll %v", scale, minLP, nll)
	}
	for i, v := range row[4:] {
		if v != 0 {
			t.Errorf("value %d = %d, want 0", i, v)
		}
	}
}

func TestEncodeLogProbsSmallRange(t *testing.T) {
	// Range 1 (< 16): the minimum logit is the floor, the maximum maps to 65535.
	logits := []float32{0, 0.25, 1, 0.5}
	row := make([]uint16, rowLen(4))
	encodeLogProbs(row, logits, 0)
	want := []uint16{0, 16384, 65535, 32768} // 0.25·65535 = 16383.75 → 16384
	for i, w := range want {
		if row[4+i] != w {
			t.Errorf("q[%d] = %d, want %d", i, row[4+i], w)
		}
	}
}

func TestBaseRoundTrip(t *testing.T) {
	const nVocab, nCtx = 64, 32
	toks := pseudoText(5*nCtx, nVocab, 9)
	m := &fakeModel{nVocab: nVocab, logits: noisyLogits(0, 0)}
	b := makeBase(t, m, toks, nCtx)
	br, err := NewBaseReader(bytes.NewReader(b), int64(len(b)), "mem")
	if err != nil {
		t.Fatal(err)
	}
	if br.NCtx != nCtx || br.NVocab != nVocab || br.NChunk != 5 || len(br.Tokens) != 5*nCtx {
		t.Fatalf("header %d %d %d %d", br.NCtx, br.NVocab, br.NChunk, len(br.Tokens))
	}
	var rows []uint16
	for i := 0; ; i++ {
		rows, err = br.NextChunk(rows)
		if err == io.EOF {
			if i != 5 {
				t.Fatalf("EOF after %d chunks", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// Writing the rows again gives the same bytes.
		off := int(BaseFileSize(nCtx, nVocab, i)) + 4*nCtx*(5-i)
		for j, v := range rows {
			if binary.LittleEndian.Uint16(b[off+2*j:]) != v {
				t.Fatalf("chunk %d value %d differs", i, j)
			}
		}
	}
}

func TestOpenBaseFromDisk(t *testing.T) {
	toks := pseudoText(128, 40, 4)
	b := makeBase(t, &fakeModel{nVocab: 40, logits: noisyLogits(0, 0)}, toks, 32)
	p := filepath.Join(t.TempDir(), "base.kld")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	br, err := OpenBase(p)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	if br.NChunk != 4 {
		t.Errorf("n_chunk %d", br.NChunk)
	}
	if _, err := OpenBase(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	// Trailing bytes are an error too: the file is not what its header says.
	if err := os.WriteFile(p, append(b, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBase(p); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("trailing byte: %v", err)
	}
}

// TestBaseTruncation: every truncation fails cleanly, with the size known
// (at open) and unknown (at the first read past the end).
func TestBaseTruncation(t *testing.T) {
	const nVocab, nCtx = 9, 8
	b := makeBase(t, &fakeModel{nVocab: nVocab, logits: noisyLogits(0, 0)}, pseudoText(2*nCtx+3, nVocab, 1), nCtx)
	for n := 0; n < len(b); n++ {
		cut := b[:n]
		if _, err := NewBaseReader(bytes.NewReader(cut), int64(n), "cut"); !errors.Is(err, ErrBaseFormat) {
			t.Fatalf("known size %d: err = %v", n, err)
		}
		br, err := NewBaseReader(bytes.NewReader(cut), -1, "cut")
		if err != nil {
			if !errors.Is(err, ErrBaseFormat) {
				t.Fatalf("stream %d: err = %v", n, err)
			}
			continue
		}
		var rows []uint16
		for {
			rows, err = br.NextChunk(rows)
			if err != nil {
				break
			}
		}
		if !errors.Is(err, ErrBaseFormat) || !strings.Contains(err.Error(), "ends inside chunk") {
			t.Fatalf("stream %d: err = %v", n, err)
		}
	}
}

func TestBaseHeaderErrors(t *testing.T) {
	good := makeBase(t, &fakeModel{nVocab: 9, logits: noisyLogits(0, 0)}, pseudoText(20, 9, 1), 8)
	patch := func(off int, v uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	nanRow := bytes.Clone(good)
	binary.LittleEndian.PutUint32(nanRow[20+4*16:], math.Float32bits(float32(math.NaN())))
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"magic", append([]byte("_logitz_"), good[8:]...), "not a KL-divergence base file"},
		{"gguf", []byte("GGUF\x03\x00\x00\x00"), "not a KL-divergence base file"},
		{"n_ctx", patch(8, 1), "n_ctx 1 out of range"},
		{"n_vocab", patch(12, 0), "n_vocab 0 out of range"},
		{"n_chunk", patch(16, 0xffffffff), "negative n_chunk"},
		{"token", patch(20+4*3, 9), "token 3 is 9"},
		{"scale", nanRow, "scale"},
	}
	for _, c := range cases {
		br, err := NewBaseReader(bytes.NewReader(c.b), -1, "f")
		if err == nil {
			for err == nil {
				_, err = br.NextChunk(nil)
			}
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

func TestBaseWriterChecks(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewBaseWriter(&buf, 8, 5, make([]int32, 12)); err == nil {
		t.Error("partial chunk accepted")
	}
	bw, err := NewBaseWriter(&buf, 8, 5, make([]int32, 16))
	if err != nil {
		t.Fatal(err)
	}
	if err := bw.WriteChunk(make([]uint16, 3)); err == nil {
		t.Error("short chunk accepted")
	}
	if err := bw.WriteChunk(make([]uint16, 3*rowLen(5))); err != nil {
		t.Fatal(err)
	}
	if err := bw.Close(); err == nil || !strings.Contains(err.Error(), "1 of the 2") {
		t.Errorf("close after 1 of 2 chunks: %v", err)
	}
}

func FuzzBaseReader(f *testing.F) {
	f.Add(makeBase(f, &fakeModel{nVocab: 5, logits: noisyLogits(0, 0)}, pseudoText(17, 5, 1), 8), true)
	f.Add([]byte("_logits_\x04\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"), false)
	f.Add([]byte("_logits_\xff\xff\xff\x00\xff\xff\xff\x00\xff\xff\xff\x7f"), false)
	f.Fuzz(func(t *testing.T, b []byte, knownSize bool) {
		size := int64(-1)
		if knownSize {
			size = int64(len(b))
		}
		br, err := NewBaseReader(bytes.NewReader(b), size, "fuzz")
		if err != nil {
			return
		}
		if len(br.Tokens) != br.NCtx*br.NChunk {
			t.Fatalf("%d tokens for %d×%d", len(br.Tokens), br.NCtx, br.NChunk)
		}
		var rows []uint16
		for i := 0; ; i++ {
			rows, err = br.NextChunk(rows)
			if err != nil {
				if err == io.EOF && i != br.NChunk {
					t.Fatalf("EOF after %d of %d chunks", i, br.NChunk)
				}
				return
			}
		}
	})
}
