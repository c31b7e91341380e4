package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// useSet installs a kernel set for the rest of the test and puts the
// previous one back afterwards.
func useSet(t testing.TB, set string) {
	t.Helper()
	prev := Active()
	if err := Use(set); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Use(prev); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSets(t *testing.T) {
	sets := Sets()
	if len(sets) == 0 || sets[len(sets)-1] != SetPureGo {
		t.Fatalf("Sets() = %v; the pure-Go set must always be last", sets)
	}
	if Active() != sets[0] {
		t.Errorf("Active() = %q at start, want the fastest set %q", Active(), sets[0])
	}
	if err := Use("sse9"); err == nil {
		t.Error("Use(sse9) succeeded")
	}
	if !hasAVX2 {
		if err := Use(SetAVX2); err == nil {
			t.Error("Use(avx2) succeeded on a CPU or build without the AVX2 kernels")
		}
	}
	if slices.Contains(sets, SetAVX512) {
		useSet(t, "AVX512") // the flag's short, any-case spelling
		if Active() != SetAVX512 {
			t.Errorf("Active() = %q after Use(AVX512)", Active())
		}
	}
}

// Every set this machine can run gives MatMul results that agree with the
// pure-Go set to float32 rounding, for every type, in the decode and the
// prompt-batch shapes; so `llqt bench --kernels X` measures the same
// computation whichever X.
func TestSetsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const cols, rows = 512, 40
	for _, typ := range allTypes {
		var w []byte
		for range rows {
			w = append(w, randomRow(rng, typ, cols, false)...)
		}
		m := Matrix{Type: typ, Data: w, Rows: rows, Cols: cols}
		for _, n := range []int{1, 20} {
			x := randomActivations(rng, n*cols)
			results := map[string][]float32{}
			for _, set := range Sets() {
				useSet(t, set)
				dst := make([]float32, n*rows)
				MatMul(dst, m, x, n, 2)
				results[set] = dst
			}
			ref := results[SetPureGo]
			scale := 0.0
			for _, v := range ref {
				scale = max(scale, math.Abs(float64(v)))
			}
			for set, got := range results {
				for i := range got {
					if d := math.Abs(float64(got[i] - ref[i])); d > 1e-4*scale+1e-6 {
						t.Fatalf("%v n=%d: set %s gives %g at %d, purego %g", typ, n, set, got[i], i, ref[i])
					}
				}
			}
		}
	}
}
