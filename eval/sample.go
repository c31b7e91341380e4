package eval

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"slices"
)

// SamplerOptions choose how the next token is drawn from the logits.
type SamplerOptions struct {
	// Temp is the softmax temperature; 0 or less means greedy (argmax).
	Temp float32
	// TopK keeps only the K most likely tokens (0: all).
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches P (1 or 0: all).
	TopP float32
	// MinP drops tokens whose probability is below MinP times the most
	// likely token's (0: off; llama.cpp's default is 0.05).
	MinP float32
	// RepeatPenalty divides positive logits (multiplies negative ones) of
	// tokens among the last RepeatLastN accepted (1 or 0: off), as
	// llama.cpp's penalties sampler does. RepeatLastN 0 turns it off.
	RepeatPenalty float32
	RepeatLastN   int
	// Ban lists tokens that are never drawn (llama.cpp's --ignore-eos
	// bans the end-of-generation tokens this way).
	Ban []int32
	// Seed of the random draw.
	Seed uint64
}

// Sampler draws tokens as llama.cpp's default chain does: top-k, then
// top-p on the untempered distribution, then temperature, then a random
// draw. It reuses its buffers, so sampling allocates nothing.
type Sampler struct {
	opt  SamplerOptions
	rng  *rand.Rand
	cand candidates
	// last holds the most recent accepted tokens (at most RepeatLastN),
	// count how often each occurs there.
	last  []int32
	count map[int32]int
	ban   map[int32]bool
}

type candidate struct {
	id    int32
	logit float32
	p     float64
}

// candidates is a min-heap on logit, used to keep the top k.
type candidates []candidate

func (c candidates) Len() int           { return len(c) }
func (c candidates) Less(i, j int) bool { return c[i].logit < c[j].logit }
func (c candidates) Swap(i, j int)      { c[i], c[j] = c[j], c[i] }
func (c *candidates) Push(x any)        { *c = append(*c, x.(candidate)) }
func (c *candidates) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

// NewSampler makes a sampler.
func NewSampler(opt SamplerOptions) *Sampler {
	s := &Sampler{opt: opt, rng: rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15)), count: map[int32]int{}}
	if len(opt.Ban) > 0 {
		s.ban = map[int32]bool{}
		for _, id := range opt.Ban {
			s.ban[id] = true
		}
	}
	return s
}

// penalizing reports whether the repeat penalty is on.
func (s *Sampler) penalizing() bool {
	return s.opt.RepeatLastN != 0 && s.opt.RepeatPenalty > 0 && s.opt.RepeatPenalty != 1
}

// Accept records a token of the sequence (prompt or generated) for the
// repeat penalty.
func (s *Sampler) Accept(id int32) {
	if !s.penalizing() {
		return
	}
	n := s.opt.RepeatLastN
	if n > 0 && len(s.last) == n {
		old := s.last[0]
		s.last = s.last[1:]
		if s.count[old]--; s.count[old] == 0 {
			delete(s.count, old)
		}
	}
	s.last = append(s.last, id)
	s.count[id]++
}

// adjusted is token i's logit after the repeat penalty and bans.
func (s *Sampler) adjusted(i int, v float32) float32 {
	if s.ban != nil && s.ban[int32(i)] {
		return float32(math.Inf(-1))
	}
	if len(s.count) > 0 && s.count[int32(i)] > 0 {
		if v <= 0 {
			return v * s.opt.RepeatPenalty
		}
		return v / s.opt.RepeatPenalty
	}
	return v
}

// Greedy returns the index of the largest logit (the lowest on ties).
func Greedy(logits []float32) int32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return int32(best)
}

// Sample picks the next token from one row of logits.
func (s *Sampler) Sample(logits []float32) int32 {
	plain := len(s.count) == 0 && s.ban == nil
	if s.opt.Temp <= 0 {
		if plain {
			return Greedy(logits)
		}
		best, bestV := 0, float32(math.Inf(-1))
		for i, v := range logits {
			if v = s.adjusted(i, v); v > bestV {
				best, bestV = i, v
			}
		}
		return int32(best)
	}
	c := s.cand[:0]
	k := s.opt.TopK
	if k <= 0 || k > len(logits) {
		k = len(logits)
	}
	if k == len(logits) {
		for i, v := range logits {
			if !plain {
				v = s.adjusted(i, v)
			}
			c = append(c, candidate{id: int32(i), logit: v})
		}
	} else {
		// Keep the k largest in a min-heap whose root is the smallest kept.
		for i, v := range logits {
			if !plain {
				v = s.adjusted(i, v)
			}
			if len(c) < k {
				c = append(c, candidate{id: int32(i), logit: v})
				if len(c) == k {
					heap.Init(&c)
				}
			} else if v > c[0].logit {
				c[0] = candidate{id: int32(i), logit: v}
				heap.Fix(&c, 0)
			}
		}
	}
	slices.SortFunc(c, func(a, b candidate) int {
		if o := higherFirst(a.logit, b.logit); o != 0 {
			return o
		}
		return int(a.id - b.id)
	})
	if p := s.opt.TopP; p > 0 && p < 1 {
		softmaxCandidates(c, 1)
		var cum float64
		for i := range c {
			cum += c[i].p
			if cum >= float64(p) {
				c = c[:i+1]
				break
			}
		}
	}
	if mp := s.opt.MinP; mp > 0 && mp <= 1 {
		// llama.cpp keeps logits within log(min_p) of the largest.
		floor := c[0].logit + float32(math.Log(float64(mp)))
		n := 1
		for n < len(c) && c[n].logit >= floor {
			n++
		}
		c = c[:n]
	}
	softmaxCandidates(c, s.opt.Temp)
	r := s.rng.Float64()
	var cum float64
	for _, x := range c {
		cum += x.p
		if r < cum {
			s.cand = c
			return x.id
		}
	}
	s.cand = c
	return c[len(c)-1].id
}

// softmaxCandidates sets p for candidates sorted by descending logit.
func softmaxCandidates(c []candidate, temp float32) {
	maxv := c[0].logit
	var sum float64
	for i := range c {
		c[i].p = math.Exp(float64((c[i].logit - maxv) / temp))
		sum += c[i].p
	}
	for i := range c {
		c[i].p /= sum
	}
}

// LogSoftmax writes log-probabilities of logits into dst (float64
// accumulation, as llama-perplexity).
func LogSoftmax(dst []float64, logits []float32) {
	maxv := float32(math.Inf(-1))
	for _, v := range logits {
		maxv = max(maxv, v)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v - maxv))
	}
	lse := float64(maxv) + math.Log(sum)
	for i, v := range logits {
		dst[i] = float64(v) - lse
	}
}

// higherFirst orders a before b when it is higher: −1, 1, or 0 when neither
// is higher (they are equal, or one is NaN).
func higherFirst[F float32 | float64](a, b F) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
