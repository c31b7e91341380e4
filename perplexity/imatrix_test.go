package perplexity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/quant"
)

// observedContext is a fakeContext that also plays a forward pass's weight
// products: per Decode, a 3-column blk product (its input row r being
// [pos, 1, -pos]), a 2-column output.weight product and a token_embd
// product, each with as many rows as tokens.
type observedContext struct {
	*fakeContext
	observe func(name string, x []float32, rows, cols int)
}

func (c *observedContext) Observe(f func(name string, x []float32, rows, cols int)) { c.observe = f }

func (c *observedContext) Decode(tokens []int32, all bool) ([]float32, error) {
	p0 := len(c.hist)
	if c.observe != nil {
		x := make([]float32, 0, 3*len(tokens))
		for i := range tokens {
			p := float32(p0 + i)
			x = append(x, p, 1, -p)
		}
		c.observe("blk.0.attn_q.weight", x, len(tokens), 3)
		c.observe("output.weight", x[:2*len(tokens)], len(tokens), 2)
		c.observe("token_embd.weight", x[:2*len(tokens)], len(tokens), 2)
	}
	return c.fakeContext.Decode(tokens, all)
}

func newObserved(nVocab, nCtx int) *observedContext {
	m := &fakeModel{nVocab: nVocab, logits: noisyLogits(3, 0.5)}
	return &observedContext{fakeContext: &fakeContext{m: m, nCtx: nCtx}}
}

func TestImatrixCollects(t *testing.T) {
	const nVocab, nCtx = 50, 20
	toks := pseudoText(3*nCtx+7, nVocab, 9)
	for _, tc := range []struct {
		name                 string
		opt                  ImatrixOptions
		chunks               int32
		entries              []string
		wantSecondColumnMean float32 // the mean of column 1's squares, always 1
	}{
		{"blocks only", ImatrixOptions{NCtx: nCtx}, 3, []string{"blk.0.attn_q.weight"}, 1},
		{"with output", ImatrixOptions{NCtx: nCtx, ProcessOutput: true}, 3, []string{"blk.0.attn_q.weight", "output.weight"}, 1},
		{"two chunks", ImatrixOptions{NCtx: nCtx, MaxChunks: 2}, 2, []string{"blk.0.attn_q.weight"}, 1},
		{"skip one", ImatrixOptions{NCtx: nCtx, SkipChunks: 1}, 2, []string{"blk.0.attn_q.weight"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newObserved(nVocab, nCtx)
			stats := quant.NewImatrixStats()
			var out bytes.Buffer
			tc.opt.Out = &out
			res, err := Imatrix(context.Background(), c, nVocab, toks, stats, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if got := stats.Names(); strings.Join(got, ",") != strings.Join(tc.entries, ",") {
				t.Errorf("entries %v, want %v", got, tc.entries)
			}
			if stats.LastCall != tc.chunks || int32(res.NChunks) != tc.chunks || stats.NCall("blk.0.attn_q.weight") != tc.chunks {
				t.Errorf("last call %d, chunks %d, ncall %d; want %d", stats.LastCall, res.NChunks, stats.NCall("blk.0.attn_q.weight"), tc.chunks)
			}
			// Column j of row p is (p, 1, -p) for positions 0…nCtx-1 of each
			// chunk: the mean squares are Σp²/nCtx, 1 and Σp²/nCtx.
			w := stats.Imatrix("").Weights["blk.0.attn_q.weight"]
			var sq float64
			for p := range nCtx {
				sq += float64(p * p)
			}
			if want := float32(sq / nCtx); !approxEqual(float64(w[0]), float64(want), 1e-6) || w[1] != tc.wantSecondColumnMean || w[2] != w[0] {
				t.Errorf("weights %v, want [%g 1 %g]", w, want, want)
			}
			if !strings.Contains(out.String(), "[1]") || !strings.Contains(out.String(), "Final estimate: PPL = ") {
				t.Errorf("running output %q", out.String())
			}
			if math.IsNaN(res.PPL) || res.PPL <= 1 {
				t.Errorf("PPL %v", res.PPL)
			}
		})
	}
}

func TestImatrixSkipsSmallProducts(t *testing.T) {
	const nVocab, nCtx = 50, 15 // 15 rows per product: fewer than 16
	c := newObserved(nVocab, nCtx)
	stats := quant.NewImatrixStats()
	res, err := Imatrix(context.Background(), c, nVocab, pseudoText(3*nCtx, nVocab, 1), stats, ImatrixOptions{NCtx: nCtx, NoPPL: true})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Len() != 0 || !math.IsNaN(res.PPL) {
		t.Errorf("%d entries, PPL %v; llama-imatrix collects no product of fewer than 16 rows and --no-ppl measures none", stats.Len(), res.PPL)
	}
}

func TestImatrixErrors(t *testing.T) {
	const nVocab, nCtx = 50, 20
	c := newObserved(nVocab, nCtx)
	for _, tc := range []struct {
		name string
		toks []int32
		opt  ImatrixOptions
		want string
	}{
		{"one chunk", pseudoText(nCtx+5, nVocab, 1), ImatrixOptions{NCtx: nCtx}, "two chunks"},
		{"skip too many", pseudoText(3*nCtx, nVocab, 1), ImatrixOptions{NCtx: nCtx, SkipChunks: 2}, "--chunk"},
		{"bad token", append(pseudoText(2*nCtx, nVocab, 1), nVocab), ImatrixOptions{NCtx: nCtx}, "outside the model's vocabulary"},
	} {
		_, err := Imatrix(context.Background(), c, nVocab, tc.toks, quant.NewImatrixStats(), tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Imatrix(ctx, c, nVocab, pseudoText(3*nCtx, nVocab, 1), quant.NewImatrixStats(), ImatrixOptions{NCtx: nCtx}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
	if c.observe != nil {
		t.Error("the observer stays installed after the run")
	}
}

// readDat decodes a legacy imatrix file into its entries as stored.
type datEntry struct {
	ncall  int32
	values []float32
}

func readDat(t *testing.T, data []byte) (map[string]datEntry, int32, string) {
	t.Helper()
	var off int
	i32 := func() int32 {
		v := int32(uint32(data[off]) | uint32(data[off+1])<<8 | uint32(data[off+2])<<16 | uint32(data[off+3])<<24)
		off += 4
		return v
	}
	n := i32()
	out := map[string]datEntry{}
	for range n {
		l := int(i32())
		name := string(data[off : off+l])
		off += l
		e := datEntry{ncall: i32()}
		nv := int(i32())
		for range nv {
			e.values = append(e.values, math.Float32frombits(uint32(i32())))
		}
		out[name] = e
	}
	last := i32()
	l := int(i32())
	return out, last, string(data[off : off+l])
}

// compareDat checks llqt's file against llama-imatrix's: the same entries,
// call counts, chunk count and dataset, and values equal within maxRel
// (each value) and meanRel (on average). The engines' activations agree
// to float32 rounding, and each value is a float32 running sum over every
// collected row in the same order, so the values differ by a few ulps times
// the square root of the row count: about 1e-5 relative at 51,200 rows.
func compareDat(t *testing.T, got, want []byte, maxRel, meanRel float64) {
	t.Helper()
	g, gl, gd := readDat(t, got)
	w, wl, wd := readDat(t, want)
	if gl != wl || gd != wd || len(g) != len(w) {
		t.Fatalf("%d entries, last call %d, dataset %q; llama-imatrix: %d, %d, %q", len(g), gl, gd, len(w), wl, wd)
	}
	var sum, worst float64
	var n int
	for name, we := range w {
		ge, ok := g[name]
		if !ok {
			t.Fatalf("no entry %s", name)
		}
		if ge.ncall != we.ncall || len(ge.values) != len(we.values) {
			t.Fatalf("%s: ncall %d, %d values; llama-imatrix %d, %d", name, ge.ncall, len(ge.values), we.ncall, len(we.values))
		}
		for j, v := range we.values {
			rel := math.Abs(float64(ge.values[j]-v)) / max(math.Abs(float64(v)), 1e-30)
			if v == 0 && ge.values[j] == 0 {
				rel = 0
			}
			sum += rel
			n++
			if rel > worst {
				worst = rel
			}
			if rel > maxRel {
				t.Errorf("%s[%d] = %g, llama-imatrix %g (relative %.2g > %g)", name, j, ge.values[j], v, rel, maxRel)
			}
		}
	}
	if sum/float64(n) > meanRel {
		t.Errorf("mean relative difference %.2g > %g", sum/float64(n), meanRel)
	}
	t.Logf("%d entries, %d values: largest relative difference %.2g, mean %.2g", len(w), n, worst, sum/float64(n))
}

// runGoldenImatrix computes the matrix of a golden2 run with llqt.
func runGoldenImatrix(t *testing.T, model string, kvF32, processOutput bool, chunks int) ([]byte, *ImatrixResult) {
	t.Helper()
	m, err := eval.Load(fixtures.Path(t, model), eval.Options{KVF32: kvF32})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	toks, opt, err := EngineText(m, fixtures.Path(t, "text/tinystories_train.txt"))
	if err != nil {
		t.Fatal(err)
	}
	c := m.NewContext(256)
	defer c.Close()
	stats := quant.NewImatrixStats()
	var out bytes.Buffer
	res, err := Imatrix(context.Background(), c, m.NVocab(), toks, stats, ImatrixOptions{
		NCtx: 256, MaxChunks: chunks, ProcessOutput: processOutput, BOS: opt.BOS, AddBOS: opt.AddBOS, Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	var dat bytes.Buffer
	if err := stats.WriteDat(&dat, "tinystories_train.txt"); err != nil {
		t.Fatal(err)
	}
	return dat.Bytes(), res
}

// checkPrintedPPL compares the final estimate with llama-imatrix's log
// (ppl_printed in golden2/imatrix.json), within 0.1%.
func checkPrintedPPL(t *testing.T, res *ImatrixResult, want float64) {
	t.Helper()
	if !approxEqual(res.PPL, want, 1e-3) {
		t.Errorf("final estimate PPL %.4f, llama-imatrix printed %.4f", res.PPL, want)
	}
}

// TestImatrixGoldenEdge: golden2's imatrix-edge.dat (llama-imatrix on the
// hard-case file, 8 chunks, --process-output, F32 KV cache).
func TestImatrixGoldenEdge(t *testing.T) {
	want, err := os.ReadFile(fixtures.Path(t, "golden2/imatrix-edge.dat"))
	if err != nil {
		t.Fatal(err)
	}
	got, res := runGoldenImatrix(t, "golden/edge-f32.gguf", true, true, 8)
	compareDat(t, got, want, 1e-4, 1e-5)
	checkPrintedPPL(t, res, 12170.6663)
}

// TestImatrixGoldenTinyStories: golden2's imatrix-tinystories.dat, 200
// chunks of 256 tokens of the training text on the tiny model.
func TestImatrixGoldenTinyStories(t *testing.T) {
	if testing.Short() {
		t.Skip("51,200 tokens; skipped with -short")
	}
	want, err := os.ReadFile(fixtures.Path(t, "golden2/imatrix-tinystories.dat"))
	if err != nil {
		t.Fatal(err)
	}
	got, res := runGoldenImatrix(t, "golden/tiny-llama-f32.gguf", false, false, 200)
	compareDat(t, got, want, 1e-4, 1e-5)
	checkPrintedPPL(t, res, 7.5336)

	// What the matrix is for: an IQ2_XXS quantized with llqt's matrix is as
	// good as one quantized with llama-imatrix's (mean KLD against the f32
	// model on held-out text within 1%).
	mine, theirs := iq2xxsKLD(t, got, want)
	t.Logf("IQ2_XXS mean KLD with llqt's matrix %.6f, with llama-imatrix's %.6f (%+.3f%%)", mine, theirs, 100*(mine/theirs-1))
	if !approxEqual(mine, theirs, 0.01) {
		t.Errorf("IQ2_XXS mean KLD with llqt's matrix %.6f, with llama-imatrix's %.6f: more than 1%% apart", mine, theirs)
	}
}

// iq2xxsKLD quantizes the tiny model to IQ2_XXS with each of two imatrix
// files and returns both mean KL-divergences against the f32 model on 24
// chunks of 256 tokens of the evaluation text.
func iq2xxsKLD(t *testing.T, datA, datB []byte) (float64, float64) {
	t.Helper()
	src := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	dir := t.TempDir()
	base, err := eval.Load(src, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	toks, opt, err := EngineText(base, text)
	if err != nil {
		t.Fatal(err)
	}
	opt.NCtx, opt.MaxChunks = 256, 24
	basePath := filepath.Join(dir, "base.kld")
	bf, err := os.Create(basePath)
	if err != nil {
		t.Fatal(err)
	}
	bopt := opt
	bopt.BaseOut = bf
	if _, err := Perplexity(context.Background(), FromEngine(base), toks, bopt); err != nil {
		t.Fatal(err)
	}
	if err := bf.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := quant.ParsePreset("IQ2_XXS")
	if err != nil {
		t.Fatal(err)
	}
	var out [2]float64
	for i, dat := range [][]byte{datA, datB} {
		im, err := quant.ParseImatrix(dat)
		if err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		planned, _, err := quant.Plan(f.Model(), quant.Options{Preset: p, Imatrix: im.Weights, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		q := filepath.Join(dir, fmt.Sprintf("iq2xxs-%d.gguf", i))
		if err := gguf.WriteFile(context.Background(), q, planned, gguf.WriteOptions{Codec: quant.Codec{}, Threads: 2}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		m, err := eval.Load(q, eval.Options{})
		if err != nil {
			t.Fatal(err)
		}
		br, err := OpenBase(basePath)
		if err != nil {
			t.Fatal(err)
		}
		res, err := KLDivergence(context.Background(), FromEngine(m), br, opt)
		br.Close()
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = res.KLD.KLD
	}
	return out[0], out[1]
}

// TestImatrixGoldenCombine: --in-file tinystories --in-file wiki without a
// text gives llama-imatrix's combined file: the same values to the bit
// (the same float32 operations), chunk count 0 and an empty dataset.
func TestImatrixGoldenCombine(t *testing.T) {
	stats := quant.NewImatrixStats()
	for _, f := range []string{"golden2/imatrix-tinystories.dat", "golden2/imatrix-wiki.dat"} {
		if err := stats.AddFile(fixtures.Path(t, f), 256); err != nil {
			t.Fatal(err)
		}
	}
	var got bytes.Buffer
	if err := stats.WriteDat(&got, ""); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(fixtures.Path(t, "golden2/imatrix-combined.dat"))
	if err != nil {
		t.Fatal(err)
	}
	compareDat(t, got.Bytes(), want, 0, 0)
	if len(got.Bytes()) != len(want) {
		t.Errorf("%d bytes, llama-imatrix wrote %d", got.Len(), len(want))
	}
	// The same statistics as a GGUF imatrix read back as the same weights.
	path := filepath.Join(t.TempDir(), "combined.gguf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := stats.WriteGGUF(context.Background(), f, "", 256); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fromGGUF, err := quant.ReadImatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	fromDat, err := quant.ParseImatrix(want)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range fromDat.Weights {
		g := fromGGUF.Weights[name]
		for j := range w {
			if !approxEqual(float64(g[j]), float64(w[j]), 1e-6) {
				t.Fatalf("%s[%d]: GGUF round trip %g, legacy %g", name, j, g[j], w[j])
			}
		}
	}
}
