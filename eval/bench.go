package eval

import (
	"context"
	"math/rand/v2"
)

// BenchRun evaluates nPrompt random tokens in one batch (BOS first when
// the model adds it), then nGen single-token steps, as llama-bench's
// test_prompt and test_gen. bos < 0 means the model adds no BOS; c should
// be Reset by the caller before a measured run.
func BenchRun(ctx context.Context, c *Context, nPrompt, nGen int, bos int32, rng *rand.Rand) error {
	nv := c.Model().NVocab()
	if nPrompt > 0 {
		toks := make([]int32, nPrompt)
		for i := range toks {
			toks[i] = int32(rng.IntN(nv))
		}
		if bos >= 0 {
			toks[0] = bos
		}
		if _, err := c.Decode(toks, false); err != nil {
			return err
		}
	}
	tok := []int32{bos}
	if bos < 0 {
		tok[0] = int32(rng.IntN(nv))
	}
	for range nGen {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := c.Decode(tok, false); err != nil {
			return err
		}
		tok[0] = int32(rng.IntN(nv))
	}
	return ctx.Err()
}
