package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
)

// goldenTypes are the edge-TYPE.gguf files llama-quantize (b4748) made from
// edge-f32.gguf (in golden/, else in golden2/, whose i-quants used an
// importance matrix), with the largest relative RMS error of a matrix we accept
// when our reading of the blocks is compared with the float32 originals. A
// misread layout gives errors near or above 1.
var goldenTypes = []struct {
	file   string
	maxRel float64
}{
	{"Q8_0", 0.02}, {"Q6_K", 0.04}, {"Q5_0", 0.1}, {"Q5_1", 0.1}, {"Q5_K_M", 0.1},
	{"Q4_0", 0.2}, {"Q4_1", 0.2}, {"Q4_K_M", 0.2}, {"IQ4_NL", 0.2}, {"IQ4_XS", 0.2},
	{"Q3_K_M", 0.3}, {"Q2_K", 0.5},
	// The 3-bit grids fit the edge patterns (lone outliers, steps) poorly:
	// IQ3_S reaches 0.63 on blk.0.ffn_gate, 0.67 there without the imatrix.
	{"IQ3_S-imat", 0.8}, {"IQ3_XXS-imat", 0.6},
	// The ternary formats keep one level per block (0.80 here), and the
	// 1-bit grids fit the edge patterns worse still: llama-quantize's own
	// IQ1_M blocks of blk.1.attn_output decode at 1.31 (llqt's encoder
	// writes the same bytes, and its decoders equal b4748's bit for bit:
	// formats/block TestGGMLHarness). These runs check the reading of
	// llama.cpp's files and MatMul over them.
	{"IQ1_M-imat", 1.4}, {"IQ1_S-imat-te_q8_0", 1.0}, {"TQ1_0", 0.85}, {"TQ2_0", 0.85},
}

// TestGoldenBlocks reads llama.cpp-quantized matrices: the blocks must decode
// close to the float32 originals (so the layouts are read as llama.cpp wrote
// them), and MatMul over them must match a float64 dot of the decoded values.
func TestGoldenBlocks(t *testing.T) {
	f32Path := fixtures.Path(t, "golden/edge-f32.gguf")
	orig, err := gguf.Open(f32Path)
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	rng := rand.New(rand.NewPCG(21, 22))
	for _, g := range goldenTypes {
		t.Run(g.file, func(t *testing.T) {
			path := filepath.Join(filepath.Dir(f32Path), "edge-"+g.file+".gguf")
			if _, err := os.Stat(path); err != nil {
				path = filepath.Join(filepath.Dir(filepath.Dir(f32Path)), "golden2", "edge-"+g.file+".gguf")
			}
			qf, err := gguf.Open(path)
			if err != nil {
				t.Skipf("no golden file: %v", err)
			}
			defer qf.Close()
			checked, worst := 0, 0.0
			for i := range qf.Tensors {
				ti := &qf.Tensors[i]
				if len(ti.Shape) != 2 || !ti.Type.Quantized() {
					continue
				}
				if !Supported(ti.Type) {
					t.Errorf("%s: type %v not supported", ti.Name, ti.Type)
					continue
				}
				oi, ok := orig.Tensor(ti.Name)
				if !ok || oi.Type != ggml.TypeF32 {
					continue
				}
				qdata, err := qf.Data(ti)
				if err != nil {
					t.Fatal(err)
				}
				odata, err := orig.Data(oi)
				if err != nil {
					t.Fatal(err)
				}
				cols, rows := int(ti.Shape[0]), int(ti.Shape[1])
				rowSize, _ := ti.Type.RowSize(uint64(cols))
				rows = min(rows, 64) // enough rows to cover every edge pattern cheaply
				var errSq, refSq float64
				deq := make([][]float64, rows)
				for r := 0; r < rows; r++ {
					deq[r] = dequant(ti.Type, qdata[r*int(rowSize):], cols)
					for c := 0; c < cols; c++ {
						o := float64(math.Float32frombits(binary.LittleEndian.Uint32(odata[4*(r*cols+c):])))
						errSq += (deq[r][c] - o) * (deq[r][c] - o)
						refSq += o * o
					}
				}
				rel := math.Sqrt(errSq / math.Max(refSq, 1e-30))
				worst = max(worst, rel)
				if rel > g.maxRel {
					t.Errorf("%s (%v): relative RMS error %.4f of decoded blocks against the f32 original, want ≤ %g", ti.Name, ti.Type, rel, g.maxRel)
				}

				m := Matrix{Type: ti.Type, Data: qdata[:rows*int(rowSize)], Rows: rows, Cols: cols}
				const n = 5
				x := randomActivations(rng, n*cols)
				dst := make([]float32, n*rows)
				MatMul(dst, m, x, n, 2)
				format, _, _ := kernelFor(ti.Type)
				for i := 0; i < n; i++ {
					act := dequantAct(format, convertAct(format, x[i*cols:(i+1)*cols]), cols)
					for r := 0; r < rows; r++ {
						want, tol := refDotFor(ti.Type, qdata[r*int(rowSize):], cols, deq[r], act)
						if got := float64(dst[i*rows+r]); math.Abs(got-want) > tol {
							t.Fatalf("%s (%v) row %d activation %d: MatMul %g, float64 dot %g (tol %g)", ti.Name, ti.Type, r, i, got, want, tol)
						}
					}
				}
				checked++
			}
			if checked == 0 {
				t.Fatalf("no quantized matrices found")
			}
			t.Logf("%d matrices checked, worst relative RMS error %.4f", checked, worst)
		})
	}
}
