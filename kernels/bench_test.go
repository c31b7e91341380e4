package kernels

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
)

// benchCols is the row length of the single-dot benchmarks (a weight row that
// stays in L1/L2, so they measure the kernels rather than DRAM).
const benchCols = 4096

// BenchmarkDot measures each block dot, in use (asm where available) and Go,
// reporting weight bytes per second.
func BenchmarkDot(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, typ := range allTypes {
		format, dot, _ := kernelFor(typ)
		w := randomRow(rng, typ, benchCols, false)
		a := convertAct(format, randomActivations(rng, benchCols))
		impls := []struct {
			name string
			f    dotFunc
		}{{"inuse", dot}, {"go", goDots[typ]}}
		for _, impl := range impls {
			b.Run(fmt.Sprintf("%v/%s", typ, impl.name), func(b *testing.B) {
				b.SetBytes(int64(len(w)))
				var sink float32
				for b.Loop() {
					sink += impl.f(w, a, benchCols)
				}
				_ = sink
			})
		}
	}
}

// BenchmarkQuantizeActivations measures converting one activation row (bytes
// are input float32 bytes).
func BenchmarkQuantizeActivations(b *testing.B) {
	x := randomActivations(rand.New(rand.NewPCG(2, 2)), benchCols)
	for _, f := range []struct {
		name string
		fmt  actFormat
	}{{"Q8_0", actQ8_0}, {"Q8_1", actQ8_1}, {"Q8_K", actQ8_K}, {"F16", actF16}, {"BF16", actBF16}} {
		dst := make([]byte, f.fmt.rowBytes(benchCols))
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(4 * benchCols)
			for b.Loop() {
				f.fmt.convert(dst, x)
			}
		})
	}
}

func BenchmarkDotF32(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	x, y := randomActivations(rng, benchCols), randomActivations(rng, benchCols)
	for _, impl := range []struct {
		name string
		f    func(a, b []float32) float32
	}{{"inuse", DotF32}, {"go", dotF32SliceGo}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(4 * benchCols)
			for b.Loop() {
				impl.f(x, y)
			}
		})
	}
}

func BenchmarkDotF16(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	x, y := randomActivations(rng, benchCols), randomActivations(rng, benchCols)
	h := make([]byte, 2*benchCols)
	F32ToF16(h, x)
	for _, impl := range []struct {
		name string
		f    func(a []byte, b []float32) float32
	}{{"inuse", DotF16}, {"go", dotF16F32Go}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(2 * benchCols)
			for b.Loop() {
				impl.f(h, y)
			}
		})
	}
}

func BenchmarkAxpyF16(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 5))
	x, y := randomActivations(rng, benchCols), randomActivations(rng, benchCols)
	h := make([]byte, 2*benchCols)
	F32ToF16(h, x)
	for _, impl := range []struct {
		name string
		f    func(y []float32, alpha float32, x []byte)
	}{{"inuse", AxpyF16}, {"go", axpyF16Go}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(2 * benchCols)
			for b.Loop() {
				impl.f(y, 1e-6, h)
			}
		})
	}
}

func BenchmarkConvert(b *testing.B) {
	rng := rand.New(rand.NewPCG(6, 6))
	x := randomActivations(rng, benchCols)
	h := make([]byte, 2*benchCols)
	f := make([]float32, benchCols)
	F32ToF16(h, x)
	cases := []struct {
		name string
		f    func()
	}{
		{"F16ToF32/inuse", func() { F16ToF32(f, h) }},
		{"F16ToF32/go", func() { f16ToF32Go(f, h) }},
		{"F32ToF16/inuse", func() { F32ToF16(h, x) }},
		{"F32ToF16/go", func() { f32ToF16Go(h, x) }},
		{"BF16ToF32/inuse", func() { BF16ToF32(f, h) }},
		{"BF16ToF32/go", func() { bf16ToF32Go(f, h) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(2 * benchCols) // the half-precision side
			for b.Loop() {
				c.f()
			}
		})
	}
}

// BenchmarkMatMul runs a TinyLlama-sized feed-forward matrix (5632 rows of
// 2048 columns) for one token and for a 512-token prompt batch, reporting
// weight bytes per second and GOP/s. Q4_0 runs the 4×4 tile, Q8_0 the panel
// kernel (with AVX512-VNNI) and Q4_K the four-row kernel.
func BenchmarkMatMul(b *testing.B) {
	const rows, cols = 5632, 2048
	rng := rand.New(rand.NewPCG(7, 7))
	for _, typ := range []ggml.Type{ggml.TypeQ4_0, ggml.TypeQ4_K, ggml.TypeQ8_0} {
		var data []byte
		for r := 0; r < rows; r++ {
			data = append(data, randomRow(rng, typ, cols, false)...)
		}
		m := Matrix{Type: typ, Data: data, Rows: rows, Cols: cols}
		for _, n := range []int{1, 512} {
			x := randomActivations(rng, n*cols)
			dst := make([]float32, n*rows)
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%v/n=%d/threads=%d", typ, n, threads), func(b *testing.B) {
					b.SetBytes(int64(len(data)))
					for b.Loop() {
						MatMul(dst, m, x, n, threads)
					}
					// Multiply-adds count two operations, as GEMM figures do.
					b.ReportMetric(2*float64(rows)*cols*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
				})
			}
		}
	}
}

// spawnFor is parallelFor without the pool, starting goroutines per call; it
// exists to measure what the pool saves.
func spawnFor(threads, tasks int, fn func(task int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	run := func() {
		defer wg.Done()
		for {
			t := int(next.Add(1) - 1)
			if t >= tasks {
				return
			}
			fn(t)
		}
	}
	wg.Add(threads)
	for i := 1; i < threads; i++ {
		go run()
	}
	run()
	wg.Wait()
}

// BenchmarkParallelFor compares the worker pool with spawning goroutines on
// a small matrix-vector product (256 rows of 2048 Q4_K, one task per 16 rows),
// the size where dispatch overhead shows.
func BenchmarkParallelFor(b *testing.B) {
	rng := rand.New(rand.NewPCG(8, 8))
	const rows, cols = 256, 2048
	var w []byte
	for r := 0; r < rows; r++ {
		w = append(w, randomRow(rng, ggml.TypeQ4_K, cols, false)...)
	}
	a := convertAct(actQ8_K, randomActivations(rng, cols))
	dst := make([]float32, rows)
	rowBytes := len(w) / rows
	dot := installed[ggml.TypeQ4_K].dot
	work := func(task int) {
		for r := task * 16; r < task*16+16; r++ {
			dst[r] = dot(w[r*rowBytes:], a, cols)
		}
	}
	for _, threads := range []int{2, 4} {
		b.Run(fmt.Sprintf("pool/threads=%d", threads), func(b *testing.B) {
			b.SetBytes(int64(len(w)))
			for b.Loop() {
				parallelFor(threads, rows/16, work)
			}
		})
		b.Run(fmt.Sprintf("spawn/threads=%d", threads), func(b *testing.B) {
			b.SetBytes(int64(len(w)))
			for b.Loop() {
				spawnFor(threads, rows/16, work)
			}
		})
	}
}

// BenchmarkDot4 compares the four-row kernels with four single-row dots on
// the same data (bytes: the weight row, counted once per four dots).
func BenchmarkDot4(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, typ := range allTypes {
		dot4 := dot4Kernels()[typ]
		if dot4 == nil {
			continue
		}
		format, dot, _ := kernelFor(typ)
		w := randomRow(rng, typ, benchCols, false)
		arow := format.rowBytes(benchCols)
		act := make([]byte, 4*arow)
		for c := 0; c < 4; c++ {
			copy(act[c*arow:], convertAct(format, randomActivations(rng, benchCols)))
		}
		out := make([]float32, 4)
		b.Run(fmt.Sprintf("%v/dot4", typ), func(b *testing.B) {
			b.SetBytes(int64(len(w)))
			for b.Loop() {
				dot4(w, act, arow, benchCols, out, 1)
			}
		})
		b.Run(fmt.Sprintf("%v/4xdot", typ), func(b *testing.B) {
			b.SetBytes(int64(len(w)))
			for b.Loop() {
				for c := 0; c < 4; c++ {
					out[c] = dot(w, act[c*arow:(c+1)*arow], benchCols)
				}
			}
		})
	}
}

// BenchmarkMatVecDRAM multiplies one token by a matrix far larger than the
// last-level cache (the decode case: every weight byte comes from DRAM).
// The matrix is 768 MiB: 96 MiB, the size it had, fits in the 260 MiB L3 of
// the 5th-gen Xeons this project is measured on.
func BenchmarkMatVecDRAM(b *testing.B) {
	const cols = 2048
	rng := rand.New(rand.NewPCG(10, 10))
	for _, typ := range []ggml.Type{ggml.TypeQ4_0, ggml.TypeQ4_K, ggml.TypeQ6_K, ggml.TypeQ8_0} {
		rowBytes, _ := typ.RowSize(cols)
		rows := (768 << 20) / int(rowBytes)
		// Random rows are slow to make; repeat a few hundred.
		var pattern []byte
		for r := 0; r < 256; r++ {
			pattern = append(pattern, randomRow(rng, typ, cols, false)...)
		}
		data := make([]byte, rows*int(rowBytes))
		for off := 0; off < len(data); off += len(pattern) {
			copy(data[off:], pattern)
		}
		m := Matrix{Type: typ, Data: data, Rows: rows, Cols: cols}
		x := randomActivations(rng, cols)
		dst := make([]float32, rows)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%v/threads=%d", typ, threads), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					MatMul(dst, m, x, 1, threads)
				}
			})
		}
	}
}

// BenchmarkShapes measures every kernel shape of every type in each kernel
// set this machine runs (BenchmarkShapes/avx2/Q4_K/dot4 …), so that the
// AVX2 path AVX2-only CPUs take is measured on AVX-512 machines too:
//   - dot: one weight row by one activation row;
//   - rows: 64 consecutive weight rows by one activation row (decode);
//   - dot4: one weight row by four activation rows;
//   - tile: four weight rows by four activation rows;
//   - panel: two weight rows by sixteen packed activation rows;
//   - panels4, panels2: two weight rows by four or two panels (the zmm
//     wide panels).
//
// Weights stay in cache (benchCols columns), so these measure the kernels;
// GOP/s counts a multiply-add as two operations, as BenchmarkMatMul does.
func BenchmarkShapes(b *testing.B) {
	for _, set := range Sets() {
		if set == SetPureGo {
			continue // BenchmarkDot's "go" rows measure the reference
		}
		prev := Active()
		if err := Use(set); err != nil {
			b.Fatal(err)
		}
		benchShapes(b, set)
		if err := Use(prev); err != nil {
			b.Fatal(err)
		}
	}
}

func benchShapes(b *testing.B, set string) {
	rng := rand.New(rand.NewPCG(12, 12))
	for _, typ := range allTypes {
		format, dot, _ := kernelFor(typ)
		const nrows, nacts = 64, panelRows
		var w []byte
		for range nrows {
			w = append(w, randomRow(rng, typ, benchCols, false)...)
		}
		wrow := len(w) / nrows
		arow := format.rowBytes(benchCols)
		act := make([]byte, nacts*arow)
		for c := range nacts {
			copy(act[c*arow:], convertAct(format, randomActivations(rng, benchCols)))
		}
		out := make([]float32, nrows*nacts)
		run := func(shape string, wRows, aRows int, f func()) {
			b.Run(fmt.Sprintf("%s/%v/%s", set, typ, shape), func(b *testing.B) {
				b.SetBytes(int64(wRows * wrow))
				for b.Loop() {
					f()
				}
				b.ReportMetric(2*benchCols*float64(wRows*aRows)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
			})
		}
		run("dot", 1, 1, func() { out[0] = dot(w, act, benchCols) })
		if rows := installed[typ].rows; rows != nil {
			run("rows", nrows, 1, func() { rows(w, act, benchCols, nrows, out) })
		}
		if dot4 := installed[typ].dot4; dot4 != nil {
			run("dot4", 1, 4, func() { dot4(w, act, arow, benchCols, out, 1) })
		}
		if rows4 := installed[typ].rows4; rows4 != nil {
			run("rows4", nrows, 4, func() { rows4(w, wrow, act, arow, benchCols, nrows, out, nrows) })
		}
		if tile := installed[typ].tile; tile != nil {
			run("tile", 4, 4, func() { tile(w, wrow, act, arow, benchCols, out, 4) })
		}
		if panel := installed[typ].panel; panel != nil {
			words := installed[typ].words
			packed := make([]byte, format.panelBytes(benchCols, words != nil))
			format.packPanel(packed, act, arow, benchCols, words != nil)
			pw, pwrow := w, wrow
			if words != nil { // the rows widened, as wordTask does once per task
				nb := benchCols / words.per
				pwrow = nb * words.bytes
				pw = make([]byte, 2*pwrow)
				words.widen(pw, w[:wrow], nb)
				words.widen(pw[pwrow:], w[wrow:], nb)
			}
			run("panel", 2, panelRows, func() { panel(pw, pwrow, packed, benchCols, out, 2) })
			for _, wide := range installed[typ].wide {
				pb := len(packed)
				many := bytes.Repeat(packed, wide.panels)
				run(fmt.Sprintf("panels%d", wide.panels), 2, wide.panels*panelRows, func() {
					wide.f(w, wrow, many, pb, benchCols, out, 2)
				})
			}
		}
	}
}

// BenchmarkPanelStream measures the widest panel kernel of each type (and
// the four-row one, where there is one) with every call on new weight rows from a matrix larger than the
// last-level cache, as a prompt task meets them (BenchmarkShapes reuses two
// rows from L1), at the shapes of TinyLlama's attention and FFN-down
// products.
func BenchmarkPanelStream(b *testing.B) {
	const nrows = 8192
	for _, typ := range []ggml.Type{ggml.TypeQ4_0, ggml.TypeQ8_0, ggml.TypeQ4_K, ggml.TypeQ6_K, ggml.TypeIQ4_XS} {
		k := installed[typ]
		if k.panel == nil || k.words != nil {
			continue // word panels widen their rows first (wordTask)
		}
		for _, cols := range []int{2048, 5632} {
			rng := rand.New(rand.NewPCG(1, 2))
			format := k.act
			row := randomRow(rng, typ, cols, false)
			wrow := len(row)
			w := bytes.Repeat(row, nrows)
			np, f := 1, func(w []byte, packed []byte, pb int, out []float32) { k.panel(w, wrow, packed, cols, out, 2) }
			if len(k.wide) > 0 {
				wide := k.wide[0]
				np, f = wide.panels, func(w []byte, packed []byte, pb int, out []float32) { wide.f(w, wrow, packed, pb, cols, out, 2) }
			}
			arow := format.rowBytes(cols)
			act := make([]byte, np*panelRows*arow)
			for c := range np * panelRows {
				copy(act[c*arow:], convertAct(format, randomActivations(rng, cols)))
			}
			pb := format.panelBytes(cols, false)
			packed := make([]byte, np*pb)
			for q := range np {
				format.packPanel(packed[q*pb:], act[q*panelRows*arow:], arow, cols, false)
			}
			out := make([]float32, np*panelRows*4)
			run := func(rows int, f func(w []byte, packed []byte, pb int, out []float32)) {
				b.Run(fmt.Sprintf("%s/%v/cols=%d/rows=%d/panels=%d", Active(), typ, cols, rows, np), func(b *testing.B) {
					b.SetBytes(int64(rows * wrow))
					r := 0
					for b.Loop() {
						f(w[r*wrow:], packed, pb, out)
						if r += rows; r >= nrows {
							r = 0
						}
					}
					b.ReportMetric(2*float64(cols)*float64(rows*np*panelRows)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
				})
			}
			run(2, f)
			if quad := k.quad; quad.f != nil && quad.panels == np {
				run(4, func(w []byte, packed []byte, pb int, out []float32) { quad.f(w, wrow, packed, pb, cols, out, 4) })
			}
		}
	}
}
