package perplexity

import (
	"bytes"
	"context"
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"
)

func TestPrepareTextDropsOneNewline(t *testing.T) {
	for in, want := range map[string]string{"a\n\n": "a\n", "a\n": "a", "a": "a", "": "", "\n": ""} {
		if got := PrepareText([]byte(in)); got != want {
			t.Errorf("PrepareText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUniformModelPerplexityIsVocabSize(t *testing.T) {
	const nVocab = 50
	m := &fakeModel{nVocab: nVocab, logits: func(row []float32, _ []int32) { clear(row) }}
	toks := pseudoText(300, nVocab, 1)
	var out bytes.Buffer
	res, err := Perplexity(context.Background(), m, toks, Options{NCtx: 64, AddBOS: true, BOS: 1, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if !approxEqual(res.PPL, nVocab, 1e-6) {
		t.Errorf("PPL = %v, want %d", res.PPL, nVocab)
	}
	// 300/64 = 4 chunks, each scoring 64−1−32 = 31 tokens.
	if res.NChunks != 4 || res.NTokensScored != 4*31 {
		t.Errorf("chunks %d scored %d, want 4 and 124", res.NChunks, res.NTokensScored)
	}
	// Identical NLLs: the variance is only rounding (llama.cpp's formula
	// keeps that too).
	if res.PPLStderr > 1e-5 {
		t.Errorf("stderr %v, want ≈0 for identical NLLs", res.PPLStderr)
	}
}

// TestTwoLevelPerplexity checks PPL and its ± against the closed form: the
// model gives the token after cur the logit ln 3 and every other token 0, so a
// correctly predicted token has p = 3/(V+2), any other 1/(V+2).
func TestTwoLevelPerplexity(t *testing.T) {
	const nVocab, nCtx = 20, 32
	m := &fakeModel{nVocab: nVocab, logits: func(row []float32, h []int32) {
		clear(row)
		row[(h[len(h)-1]+1)%nVocab] = float32(math.Log(3))
	}}
	toks := pseudoText(3*nCtx+5, nVocab, 7)
	var out bytes.Buffer
	res, err := Perplexity(context.Background(), m, toks, Options{NCtx: nCtx, NBatch: nCtx, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	hit, miss := -math.Log(3.0/(nVocab+2)), -math.Log(1.0/(nVocab+2))
	var sum, sum2 float64
	n := 0
	for c := 0; c < 3; c++ {
		for j := nCtx / 2; j <= nCtx-2; j++ {
			cur, next := toks[c*nCtx+j], toks[c*nCtx+j+1]
			v := miss
			if next == (cur+1)%nVocab {
				v = hit
			}
			sum += v
			sum2 += v * v
			n++
		}
	}
	mean := sum / float64(n)
	wantPPL := math.Exp(mean)
	wantErr := math.Sqrt((sum2/float64(n)-mean*mean)/float64(n-1)) * wantPPL
	if !approxEqual(res.PPL, wantPPL, 1e-6) || !approxEqual(res.PPLStderr, wantErr, 1e-4) {
		t.Errorf("PPL %v ± %v, want %v ± %v", res.PPL, res.PPLStderr, wantPPL, wantErr)
	}
	if res.NTokensScored != n {
		t.Errorf("scored %d, want %d", res.NTokensScored, n)
	}
	// The running output: one "[i]x.xxxx," per chunk, then the final line.
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^\[1\]\d+\.\d{4},\[2\]\d+\.\d{4},\[3\]\d+\.\d{4},$`).MatchString(lines[0]) {
		t.Errorf("running output %q", out.String())
	}
	if !regexp.MustCompile(`^Final estimate: PPL = \d+\.\d{4} \+/- \d+\.\d{5}$`).MatchString(lines[len(lines)-1]) {
		t.Errorf("final line %q", lines[len(lines)-1])
	}
}

func TestFirstTokenOfEachChunkIsBOS(t *testing.T) {
	m := &fakeModel{nVocab: 30, logits: noisyLogits(0, 0)}
	toks := pseudoText(200, 30, 3)
	if _, err := Perplexity(context.Background(), m, toks, Options{NCtx: 50, NBatch: 20, AddBOS: true, BOS: 29}); err != nil {
		t.Fatal(err)
	}
	if len(m.firstToks) != 4 {
		t.Fatalf("%d sequences started, want 4", len(m.firstToks))
	}
	for i, f := range m.firstToks {
		if f != 29 {
			t.Errorf("chunk %d started with %d, want BOS 29", i, f)
		}
	}
}

// TestIndependentOfBatchAndThreads: llama.cpp's figures must not depend on
// -b or -t; ours are bit-identical across both.
func TestIndependentOfBatchAndThreads(t *testing.T) {
	const nVocab = 300
	toks := pseudoText(1000, nVocab, 11)
	var ref *Result
	for _, c := range []struct{ batch, threads int }{{2048, 1}, {128, 1}, {50, 3}, {17, 2}, {256, 4}, {384, 1}} {
		m := &fakeModel{nVocab: nVocab, logits: noisyLogits(0, 0)}
		res, err := Perplexity(context.Background(), m, toks, Options{NCtx: 128, NBatch: c.batch, Threads: c.threads, MaxChunks: 6})
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = res
			continue
		}
		if res.PPL != ref.PPL || res.PPLStderr != ref.PPLStderr || !equalFloats(res.ChunkNLL, ref.ChunkNLL) {
			t.Errorf("-b %d -t %d: PPL %v ± %v, want %v ± %v", c.batch, c.threads, res.PPL, res.PPLStderr, ref.PPL, ref.PPLStderr)
		}
	}
	if ref.NChunks != 6 {
		t.Errorf("--chunks 6 gave %d chunks", ref.NChunks)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTextTooShort(t *testing.T) {
	m := &fakeModel{nVocab: 10, logits: noisyLogits(0, 0)}
	_, err := Perplexity(context.Background(), m, pseudoText(127, 10, 1), Options{NCtx: 64})
	if !errors.Is(err, ErrTooShort) || !strings.Contains(err.Error(), "127 tokens") {
		t.Fatalf("err = %v, want ErrTooShort naming the 127 tokens", err)
	}
}

func TestTokenOutsideVocabulary(t *testing.T) {
	m := &fakeModel{nVocab: 10, logits: noisyLogits(0, 0)}
	toks := pseudoText(200, 10, 1)
	toks[77] = 10
	if _, err := Perplexity(context.Background(), m, toks, Options{NCtx: 64}); err == nil || !strings.Contains(err.Error(), "token 77") {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelled(t *testing.T) {
	m := &fakeModel{nVocab: 10, logits: noisyLogits(0, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Perplexity(ctx, m, pseudoText(200, 10, 1), Options{NCtx: 64}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestProgressReportsEveryChunk(t *testing.T) {
	m := &fakeModel{nVocab: 10, logits: noisyLogits(0, 0)}
	var seen []int
	_, err := Perplexity(context.Background(), m, pseudoText(330, 10, 1), Options{NCtx: 64, NBatch: 128,
		Progress: func(done, total int) {
			if total != 5 {
				t.Errorf("total %d, want 5", total)
			}
			seen = append(seen, done)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 5 || seen[4] != 5 {
		t.Errorf("progress %v", seen)
	}
}

// TestWritingBaseKeepsPPL: with --kl-divergence-base, llama.cpp takes the NLL
// in float32; the PPL must still agree to far below the printed digits.
func TestWritingBaseKeepsPPL(t *testing.T) {
	const nVocab = 301 // odd: one padding value per row
	toks := pseudoText(700, nVocab, 5)
	m := &fakeModel{nVocab: nVocab, logits: noisyLogits(0, 0)}
	plain, err := Perplexity(context.Background(), m, toks, Options{NCtx: 128})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	withBase, err := Perplexity(context.Background(), m, toks, Options{NCtx: 128, BaseOut: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if !approxEqual(plain.PPL, withBase.PPL, 1e-6) {
		t.Errorf("PPL %v with base file, %v without", withBase.PPL, plain.PPL)
	}
	if int64(buf.Len()) != BaseFileSize(128, nVocab, 5) {
		t.Errorf("base file %d bytes, want %d", buf.Len(), BaseFileSize(128, nVocab, 5))
	}
}
