//go:build !purego

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
)

// The AMX tile kernels give the dot's bits for every output: sixteen weight
// rows times one to three panels, whole matrices through MatMul (with rows
// and activation rows left over for the other kernels), and quants at their
// extremes.
func TestAMXMatchesDot(t *testing.T) {
	if !hasAMX {
		t.Skip("no AMX on this CPU (or Linux refused the tile state)")
	}
	useSet(t, SetAMX)
	rng := rand.New(rand.NewPCG(31, 32))
	tasks := map[ggml.Type]amxTaskFunc{}
	for _, at := range amxTypes {
		tasks[at.typ] = at.w.task
	}
	for _, at := range amxKTypes {
		tasks[at.typ] = at.w.task
	}
	for typ, task := range tasks {
		format, dot, _ := kernelFor(typ)
		for _, nb := range []int{0, 1, 2, 3, 8, 9} {
			cols := nb * typ.BlockSize()
			if format == actQ8_K && nb > 3 {
				continue
			}
			for _, c := range []struct{ rows, n int }{{16, 16}, {16, 48}, {40, 35}} {
				name := fmt.Sprintf("%v cols=%d %dx%d", typ, cols, c.rows, c.n)
				var w []byte
				for r := range c.rows {
					row := randomRow(rng, typ, cols, r%5 == 3)
					if r == 0 && typ == ggml.TypeQ8_0 && cols > 0 {
						row[2], row[3], row[4] = 0x80, 0x7f, 0x81
					}
					w = append(w, row...)
				}
				wrow := len(w) / c.rows
				m := Matrix{Type: typ, Data: w, Rows: c.rows, Cols: cols}
				x := randomActivations(rng, c.n*cols)
				for i := range cols { // a constant row: every quant ±127, the largest group sums
					x[3*cols+i] = -2
				}
				act := convertAct(format, x)
				arow := format.rowBytes(cols)
				dst := make([]float32, c.n*c.rows)
				if c.rows == amxRows && c.n%panelRows == 0 && cols > 0 {
					// The tile kernels alone, on the panels MatMul would pack.
					pb := format.panelBytes(cols, false)
					np := c.n / panelRows
					j := &mmJob{panels: make([]byte, np*pb), panelBytes: pb, cols: cols, arow: arow, act: act, format: format}
					if format == actQ8_K {
						j.amxK = true
						j.amxSums = make([]byte, np*(cols/256)*amxKSums)
					}
					for q := range np {
						j.pack(q)
					}
					task(j, &mmPart{m: m, dst: dst, wrow: wrow}, 0, 0, c.n)
				} else {
					MatMul(dst, m, x, c.n, 2)
				}
				bad := 0
				for i := range c.n {
					for r := range c.rows {
						want := dot(w[r*wrow:(r+1)*wrow], act[i*arow:(i+1)*arow], cols)
						if got := dst[i*c.rows+r]; math.Float32bits(got) != math.Float32bits(want) && bad < 5 {
							bad++
							t.Errorf("%s: row %d col %d: %g, dot %g", name, r, i, got, want)
						}
					}
				}
			}
		}
	}
}

// BenchmarkAMXPanels times the AMX panel kernel alone over sixteen weight
// rows (K = 32·nb) and np panels, data in cache: ns/bp is the time per
// block and panel (16×16×32 products and their scaling).
func BenchmarkAMXPanels(b *testing.B) {
	if !hasAMX {
		b.Skip("no AMX on this CPU (or Linux refused the tile state)")
	}
	rng := rand.New(rand.NewPCG(33, 34))
	for _, c := range []struct{ nb, np int }{{64, 4}, {64, 16}, {176, 16}} {
		b.Run(fmt.Sprintf("K=%d/panels=%d", c.nb*32, c.np), func(b *testing.B) {
			nb, np, pb := c.nb, c.np, c.nb*panelBlock
			a := make([]byte, nb*amxRows*32)
			dw := make([]float32, nb*amxRows)
			panels := make([]byte, np*pb)
			for i := range a {
				a[i] = byte(rng.IntN(256))
			}
			for i := range dw {
				dw[i] = rng.Float32()
			}
			cols := nb * 32
			act := convertAct(actQ8_0, randomActivations(rng, panelRows*cols))
			for q := range np {
				actQ8_0.packPanel(panels[q*pb:], act, actQ8_0.rowBytes(cols), cols, false)
			}
			out := make([]float32, np*panelRows*amxRows)
			buf := make([]byte, amxBuf)
			b.SetBytes(int64(len(panels)))
			for range b.N {
				amxPanelsQ8_0(&a[0], 32, amxRows*32, &dw[0], &panels[0], pb, np, nb, &out[0], 4*amxRows, &buf[0])
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(nb*np), "ns/bp")
		})
	}
}

// BenchmarkAMXPanelsK times the K-quant AMX kernels alone (Q4_K's, with
// mins, and Q6_K's, without) over sixteen prepared weight rows (K = 256·nb)
// and np panels, data in cache: ns/bp is the time per 256-quant block and
// panel.
func BenchmarkAMXPanelsK(b *testing.B) {
	if !hasAMX {
		b.Skip("no AMX on this CPU (or Linux refused the tile state)")
	}
	rng := rand.New(rand.NewPCG(35, 36))
	for _, at := range amxKTypes {
		if at.typ != ggml.TypeQ4_K && at.typ != ggml.TypeQ6_K {
			continue
		}
		for _, c := range []struct{ nb, np int }{{8, 4}, {8, 16}, {22, 16}} {
			b.Run(fmt.Sprintf("%v/K=%d/panels=%d", at.typ, c.nb*256, c.np), func(b *testing.B) {
				nb, np, cols := c.nb, c.np, c.nb*256
				var w []byte
				for range amxRows {
					w = append(w, randomRow(rng, at.typ, cols, false)...)
				}
				a := make([]byte, nb*amxKBlock)
				dh := make([]byte, nb*64)
				dw := make([]float32, nb*32)
				at.w.prep(&w[0], len(w)/amxRows, nb, &a[0], &dh[0])
				F16ToF32(dw, dh)
				arow := actQ8_K.rowBytes(cols)
				act := convertAct(actQ8_K, randomActivations(rng, panelRows*cols))
				pb := actQ8_K.panelBytes(cols, false)
				panels, sums := make([]byte, np*pb), make([]byte, np*nb*amxKSums)
				for q := range np {
					actQ8_K.packPanel(panels[q*pb:], act, arow, cols, false)
					packAMXSums(sums[q*nb*amxKSums:], act, arow, nb)
				}
				out := make([]float32, np*panelRows*amxRows)
				buf := make([]byte, amxKBuf)
				b.SetBytes(int64(len(panels)))
				for range b.N {
					at.w.panels(&a[0], &dw[0], &panels[0], pb, &sums[0], nb*amxKSums, np, nb, &out[0], 4*amxRows, &buf[0])
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(nb*np), "ns/bp")
			})
		}
	}
}
