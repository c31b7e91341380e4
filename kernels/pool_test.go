package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
)

// TestParallelRunsEveryTaskOnce checks task coverage for thread counts
// around the task count, including loops nested in a task and loops started
// from several goroutines at once (those run on their own callers).
func TestParallelRunsEveryTaskOnce(t *testing.T) {
	for _, tc := range []struct{ threads, tasks int }{
		{1, 5}, {2, 1}, {2, 2}, {2, 37}, {3, 1000}, {8, 3}, {4, 0},
	} {
		t.Run(fmt.Sprintf("threads=%d/tasks=%d", tc.threads, tc.tasks), func(t *testing.T) {
			for rep := 0; rep < 50; rep++ {
				counts := make([]atomic.Int32, tc.tasks)
				var inner atomic.Int64
				Parallel(tc.threads, tc.tasks, func(task int) {
					counts[task].Add(1)
					Parallel(tc.threads, 3, func(int) { inner.Add(1) })
				})
				for i := range counts {
					if c := counts[i].Load(); c != 1 {
						t.Fatalf("rep %d: task %d ran %d times", rep, i, c)
					}
				}
				if got := inner.Load(); got != int64(3*tc.tasks) {
					t.Fatalf("rep %d: nested tasks ran %d times, want %d", rep, got, 3*tc.tasks)
				}
			}
		})
	}
	t.Run("concurrent callers", func(t *testing.T) {
		var wg sync.WaitGroup
		var total atomic.Int64
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for rep := 0; rep < 200; rep++ {
					Parallel(2, 16, func(int) { total.Add(1) })
				}
			}()
		}
		wg.Wait()
		if got := total.Load(); got != 4*200*16 {
			t.Fatalf("%d tasks ran, want %d", got, 4*200*16)
		}
	})
}

// TestMatMulManyMatchesMatMul checks the fused products against separate
// MatMul calls bit for bit, for mixed weight types that share an activation
// format (Q4_K with Q6_K, as in Q4_K_M files; Q8_0 and Q4_0, whose AVX2
// panels differ in kind, so that a part of the other kind uses its tiles),
// for formats that do not (it falls back), and for several thread counts.
func TestMatMulManyMatchesMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const cols = 512
	for _, types := range [][]ggml.Type{
		{ggml.TypeQ4_K, ggml.TypeQ4_K, ggml.TypeQ6_K},
		{ggml.TypeQ8_0, ggml.TypeQ8_0},
		{ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeIQ4_NL},
		{ggml.TypeQ4_0, ggml.TypeQ8_0},
		{ggml.TypeQ4_0, ggml.TypeQ4_1, ggml.TypeF16},
		{ggml.TypeF32, ggml.TypeF32, ggml.TypeF32},
	} {
		var ms []Matrix
		for k, typ := range types {
			rows := 19 + 16*k
			var w []byte
			for r := 0; r < rows; r++ {
				w = append(w, randomRow(rng, typ, cols, false)...)
			}
			ms = append(ms, Matrix{Type: typ, Data: w, Rows: rows, Cols: cols})
		}
		for _, n := range []int{1, 5, 70} {
			x := randomActivations(rng, n*cols)
			for _, threads := range []int{1, 2, 3} {
				dsts := make([][]float32, len(ms))
				for k, m := range ms {
					dsts[k] = make([]float32, n*m.Rows)
				}
				MatMulMany(dsts, ms, x, n, threads)
				for k, m := range ms {
					want := make([]float32, n*m.Rows)
					MatMul(want, m, x, n, 1)
					for i := range want {
						if math.Float32bits(dsts[k][i]) != math.Float32bits(want[i]) {
							t.Fatalf("%v n=%d threads=%d matrix %d (%v): dst[%d]=%g, MatMul gave %g",
								types, n, threads, k, m.Type, i, dsts[k][i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestMatMulAllocations checks that a product allocates nothing once the
// pools are warm (decoding runs hundreds of them per token).
func TestMatMulAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const rows, cols = 64, 512
	var w []byte
	for r := 0; r < rows; r++ {
		w = append(w, randomRow(rng, ggml.TypeQ4_K, cols, false)...)
	}
	m := Matrix{Type: ggml.TypeQ4_K, Data: w, Rows: rows, Cols: cols}
	x := randomActivations(rng, cols)
	dst := make([]float32, rows)
	dsts, ms := [][]float32{dst, dst}, []Matrix{m, m}
	MatMulMany(dsts, ms, x, 1, 2)
	allocs := testing.AllocsPerRun(100, func() {
		MatMul(dst, m, x, 1, 2)
		MatMulMany(dsts, ms, x, 1, 2)
	})
	if allocs > 0.1 && !raceEnabled {
		t.Errorf("%.2f allocations per MatMul+MatMulMany", allocs)
	}
}

// TestRoundF16 checks RoundF16 against a round trip through halves, in place.
func TestRoundF16(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, n := range []int{0, 1, 7, 8, 9, 100} {
		x := randomActivations(rng, n)
		h := make([]byte, 2*n)
		F32ToF16(h, x)
		want := make([]float32, n)
		F16ToF32(want, h)
		RoundF16(x, x)
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d: [%d] = %g, round trip gives %g", n, i, x[i], want[i])
			}
		}
	}
}
