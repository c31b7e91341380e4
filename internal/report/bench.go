package report

import (
	"context"
	"math"
	"math/rand/v2"
	"time"

	"github.com/llqt/llqt/eval"
)

// benchResult is a short llama-bench-style measurement.
type benchResult struct {
	pp, ppSD, tg, tgSD float64
}

// bench measures prompt processing (nPrompt random tokens, BOS first, in one
// batch) and generation (nGen single-token steps from an empty cache), as
// llama-bench's pp and tg tests do: one warm-up, then reps repetitions.
func bench(ctx context.Context, m *eval.Model, nPrompt, nGen, reps int, bos int32, addBOS bool) (benchResult, error) {
	var r benchResult
	rng := rand.New(rand.NewPCG(1, 2)) // the same token sequence for every variant
	c := m.NewContext(max(nPrompt, nGen) + 1)
	defer c.Close()
	if !addBOS {
		bos = -1
	}
	runPP := func() (float64, error) {
		c.Reset()
		t0 := time.Now()
		if err := eval.BenchRun(ctx, c, nPrompt, 0, bos, rng); err != nil {
			return 0, err
		}
		return float64(nPrompt) / time.Since(t0).Seconds(), nil
	}
	runTG := func() (float64, error) {
		c.Reset()
		t0 := time.Now()
		if err := eval.BenchRun(ctx, c, 0, nGen, bos, rng); err != nil {
			return 0, err
		}
		return float64(nGen) / time.Since(t0).Seconds(), nil
	}
	var err error
	if nPrompt > 0 {
		if r.pp, r.ppSD, err = repeat(ctx, reps, runPP); err != nil {
			return r, err
		}
	}
	if nGen > 0 {
		if r.tg, r.tgSD, err = repeat(ctx, reps, runTG); err != nil {
			return r, err
		}
	}
	return r, nil
}

// repeat runs f once to warm up and then reps times, returning the mean and
// sample standard deviation of its rates.
func repeat(ctx context.Context, reps int, f func() (float64, error)) (mean, sd float64, err error) {
	if _, err := f(); err != nil {
		return 0, 0, err
	}
	var xs []float64
	for range reps {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		x, err := f()
		if err != nil {
			return 0, 0, err
		}
		xs = append(xs, x)
	}
	return meanSD(xs)
}

func meanSD(xs []float64) (mean, sd float64, err error) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) > 1 {
		for _, x := range xs {
			sd += (x - mean) * (x - mean)
		}
		sd = math.Sqrt(sd / float64(len(xs)-1))
	}
	return mean, sd, nil
}
