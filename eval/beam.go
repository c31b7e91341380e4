package eval

import (
	"fmt"
	"slices"
)

// BeamOptions configure BeamSearch.
type BeamOptions struct {
	Beams    int // number of beams kept (≥ 1)
	NPredict int // tokens to generate at most
	// Stop reports end-of-generation tokens; a beam that emits one is
	// finished (the stop token is not part of its output).
	Stop func(id int32) bool
	// Step, if set, is called after each step with the best beam so far.
	Step func(best []int32)
}

type beam struct {
	tokens []int32
	score  float64 // sum of log-probabilities of tokens
	done   bool
	ctx    *Context
	logits []float32 // next-token logits of an unfinished beam
}

// BeamSearch generates up to NPredict tokens after prompt keeping the Beams
// most probable continuations (by summed log-probability) at every step, and
// returns the best one. The prompt is decoded once in c, which the search
// then uses as one of its beams; the other beams use contexts of the same
// size that are closed before returning.
func BeamSearch(c *Context, prompt []int32, opt BeamOptions) ([]int32, error) {
	if opt.Beams < 1 {
		return nil, fmt.Errorf("eval: beam search needs at least one beam, got %d", opt.Beams)
	}
	if c.Pos()+len(prompt)+opt.NPredict > c.NCtx() {
		return nil, fmt.Errorf("eval: prompt of %d tokens plus %d to generate exceed the context of %d",
			len(prompt), opt.NPredict, c.NCtx())
	}
	logits, err := c.Decode(prompt, false)
	if err != nil {
		return nil, err
	}
	nv := c.m.NVocab()
	ctxs := []*Context{c}
	defer func() {
		for _, x := range ctxs[1:] {
			x.Close()
		}
	}()
	for len(ctxs) < opt.Beams {
		ctxs = append(ctxs, c.m.NewContext(c.NCtx()))
	}
	beams := []*beam{{ctx: c, logits: slices.Clone(logits)}}
	lp := make([]float64, nv)
	type cand struct {
		parent *beam
		token  int32
		score  float64
	}
	var cands []cand
	for step := 0; step < opt.NPredict; step++ {
		cands = cands[:0]
		for _, b := range beams {
			if b.done {
				cands = append(cands, cand{parent: b, token: -1, score: b.score})
				continue
			}
			LogSoftmax(lp, b.logits)
			// The beam's best Beams tokens are enough: no more than
			// Beams children of one parent can survive.
			top := topIndices(lp, opt.Beams)
			for _, id := range top {
				cands = append(cands, cand{parent: b, token: int32(id), score: b.score + lp[id]})
			}
		}
		slices.SortStableFunc(cands, func(a, b cand) int { return higherFirst(a.score, b.score) })
		cands = cands[:min(len(cands), opt.Beams)]

		// Assign contexts: a parent's first surviving child inherits its
		// context, later children get copies of it in contexts freed by
		// parents without children. All copies happen before any decode.
		inherited := map[*beam]bool{}
		used := map[*Context]bool{}
		next := make([]*beam, len(cands))
		for i, cd := range cands {
			if cd.token < 0 {
				next[i] = cd.parent
				used[cd.parent.ctx] = true
				continue
			}
			if !inherited[cd.parent] {
				inherited[cd.parent] = true
				used[cd.parent.ctx] = true
				next[i] = &beam{tokens: append(slices.Clone(cd.parent.tokens), cd.token), score: cd.score, ctx: cd.parent.ctx}
			}
		}
		var free []*Context
		for _, x := range ctxs {
			if !used[x] {
				free = append(free, x)
			}
		}
		for i, cd := range cands {
			if next[i] != nil {
				continue
			}
			x := free[0]
			free = free[1:]
			if err := x.CopyFrom(cd.parent.ctx); err != nil {
				return nil, err
			}
			// The parent's context may already hold the first child's
			// token only after decoding, which has not happened yet.
			next[i] = &beam{tokens: append(slices.Clone(cd.parent.tokens), cd.token), score: cd.score, ctx: x}
		}
		allDone := true
		for i, cd := range cands {
			b := next[i]
			if cd.token < 0 {
				continue
			}
			if opt.Stop != nil && opt.Stop(cd.token) {
				b.tokens = b.tokens[:len(b.tokens)-1]
				b.done = true
				continue
			}
			allDone = false
			out, err := b.ctx.Decode([]int32{cd.token}, false)
			if err != nil {
				return nil, err
			}
			b.logits = append(b.logits[:0], out...)
		}
		beams = next
		if opt.Step != nil {
			opt.Step(beams[0].tokens)
		}
		if allDone {
			break
		}
	}
	return beams[0].tokens, nil
}

// topIndices returns the indices of the k largest values, largest first.
func topIndices(x []float64, k int) []int {
	idx := make([]int, 0, k+1)
	for i, v := range x {
		if len(idx) < k || v > x[idx[len(idx)-1]] {
			pos, _ := slices.BinarySearchFunc(idx, v, func(j int, v float64) int {
				if x[j] > v {
					return -1
				}
				return 1
			})
			idx = slices.Insert(idx, pos, i)
			if len(idx) > k {
				idx = idx[:k]
			}
		}
	}
	return idx
}
