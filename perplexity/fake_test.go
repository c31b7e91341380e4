package perplexity

import (
	"fmt"
	"math"
	"sync"
)

// fakeModel is a causal stand-in for an engine: the logits at a position
// depend only on the tokens up to it, so piecewise decoding, batching and
// parallel contexts must all give the same numbers.
type fakeModel struct {
	nVocab int
	// logits fills row with the logits after history (ending at the current
	// position).
	logits func(row []float32, history []int32)

	mu        sync.Mutex
	firstToks []int32 // the token each Reset-started sequence began with
}

func (m *fakeModel) NVocab() int { return m.nVocab }

func (m *fakeModel) NewContext(nCtx int) (Context, error) {
	return &fakeContext{m: m, nCtx: nCtx}, nil
}

type fakeContext struct {
	m    *fakeModel
	nCtx int
	hist []int32
}

func (c *fakeContext) Reset() { c.hist = c.hist[:0] }

func (c *fakeContext) Decode(tokens []int32, all bool) ([]float32, error) {
	if len(c.hist)+len(tokens) > c.nCtx {
		return nil, fmt.Errorf("context overflow: %d + %d > %d", len(c.hist), len(tokens), c.nCtx)
	}
	if len(c.hist) == 0 && len(tokens) > 0 {
		c.m.mu.Lock()
		c.m.firstToks = append(c.m.firstToks, tokens[0])
		c.m.mu.Unlock()
	}
	var out []float32
	for i, t := range tokens {
		c.hist = append(c.hist, t)
		if all || i == len(tokens)-1 {
			row := make([]float32, c.m.nVocab)
			c.m.logits(row, c.hist)
			out = append(out, row...)
		}
	}
	return out, nil
}

// hash64 is a small deterministic mixer (splitmix64).
func hash64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// noisyLogits gives varied logits over about [−22, 8] that favour cur+1,
// with a per-model salt so two salts act as two "quantizations".
func noisyLogits(salt uint64, noise float32) func(row []float32, hist []int32) {
	return func(row []float32, hist []int32) {
		cur := uint64(hist[len(hist)-1])
		var prev uint64
		if len(hist) > 1 {
			prev = uint64(hist[len(hist)-2])
		}
		for v := range row {
			h := hash64(cur*1_000_003 + prev*7919 + uint64(v))
			u := float32(h>>40) / float32(1<<24) // [0,1)
			row[v] = -22 + 24*u*u
			if salt != 0 {
				hs := hash64(h ^ salt)
				row[v] += noise * (float32(hs>>40)/float32(1<<24) - 0.5)
			}
		}
		row[(cur+1)%uint64(len(row))] += 6
	}
}

// pseudoText returns n tokens in [0, nVocab) that follow the fake models'
// favourite continuation about half of the time.
func pseudoText(n, nVocab int, seed uint64) []int32 {
	toks := make([]int32, n)
	for i := range toks {
		h := hash64(seed + uint64(i))
		if i > 0 && h%2 == 0 {
			toks[i] = (toks[i-1] + 1) % int32(nVocab)
		} else {
			toks[i] = int32(h % uint64(nVocab))
		}
	}
	return toks
}

func approxEqual(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))
}
