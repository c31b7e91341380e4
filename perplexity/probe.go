package perplexity

import (
	"context"
	"fmt"
	"math"

	"github.com/llqt/llqt/kernels"
)

// A KLDProbe measures how far a model's predictions move from a base's on a
// few chunks of calibration text: the mean KL-divergence over the scored
// positions of each chunk (llama-perplexity's positions n_ctx/2 … n_ctx−2).
// The base log-probabilities are taken once, from the model as it is when
// the probe is made; each Measure then evaluates the model as it is then
// (with some weight replaced, say) against them. It is the measurement
// behind size-targeted quantization: the KL-divergence one tensor adds in
// one type.
type KLDProbe struct {
	c       Context
	nVocab  int
	nCtx    int
	first   int
	chunks  [][]int32
	base    [][]float32 // per chunk: scored × nVocab log-probabilities
	threads int
	kld     []float64
}

// NewKLDProbe takes nChunks chunks of nCtx tokens from the start of tokens
// (the first of each replaced by bos when addBOS) and records c's
// log-probabilities on them.
func NewKLDProbe(ctx context.Context, c Context, nVocab int, tokens []int32, nCtx, nChunks int, bos int32, addBOS bool, threads int) (*KLDProbe, error) {
	if nCtx < 4 {
		return nil, fmt.Errorf("calibration context of %d tokens is too small", nCtx)
	}
	if n := len(tokens) / nCtx; n < nChunks {
		if n < 1 {
			return nil, fmt.Errorf("%w: the calibration text has %d tokens, fewer than one chunk of %d", ErrTooShort, len(tokens), nCtx)
		}
		nChunks = n
	}
	p := &KLDProbe{c: c, nVocab: nVocab, nCtx: nCtx, first: nCtx / 2, threads: max(threads, 1)}
	for i := range nChunks {
		ch := append([]int32(nil), tokens[i*nCtx:(i+1)*nCtx]...)
		if addBOS {
			ch[0] = bos
		}
		p.chunks = append(p.chunks, ch)
	}
	scored := scoredPerChunk(nCtx)
	p.kld = make([]float64, scored)
	for _, ch := range p.chunks {
		logits, err := p.decode(ctx, ch)
		if err != nil {
			return nil, err
		}
		lp := make([]float32, scored*nVocab)
		kernels.Parallel(p.threads, scored, func(j int) {
			logSoftmax(lp[j*nVocab:(j+1)*nVocab], logits[(p.first+j)*nVocab:(p.first+j+1)*nVocab])
		})
		p.base = append(p.base, lp)
	}
	return p, nil
}

func (p *KLDProbe) decode(ctx context.Context, chunk []int32) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.c.Reset()
	return p.c.Decode(chunk, true)
}

// Tokens is the number of positions a Measure scores.
func (p *KLDProbe) Tokens() int { return len(p.chunks) * scoredPerChunk(p.nCtx) }

// Measure evaluates the model as it is now and returns its mean
// KL-divergence from the base over the scored positions.
func (p *KLDProbe) Measure(ctx context.Context) (float64, error) {
	var sum float64
	for i, ch := range p.chunks {
		logits, err := p.decode(ctx, ch)
		if err != nil {
			return 0, err
		}
		base := p.base[i]
		kernels.Parallel(p.threads, len(p.kld), func(j int) {
			p.kld[j] = klDivergence(base[j*p.nVocab:(j+1)*p.nVocab], logits[(p.first+j)*p.nVocab:(p.first+j+1)*p.nVocab])
		})
		for _, v := range p.kld {
			sum += v
		}
	}
	kld := sum / float64(p.Tokens())
	if math.IsNaN(kld) || math.IsInf(kld, 0) {
		return 0, fmt.Errorf("the KL-divergence from the base is %v", kld)
	}
	return kld, nil
}

// logSoftmax writes the log-probabilities of logits into dst.
func logSoftmax(dst, logits []float32) {
	maxLogit := maxOf(logits)
	lse := float32(math.Log(sumExp(logits, maxLogit))) + maxLogit
	for i, v := range logits {
		dst[i] = v - lse
	}
}

// klDivergence is Σ p·(log p − log q) for the base log-probabilities
// baseLP and the logits of q.
func klDivergence(baseLP, logits []float32) float64 {
	maxLogit := maxOf(logits)
	lse := math.Log(sumExp(logits, maxLogit)) + float64(maxLogit)
	var kl float64
	for i, lp := range baseLP {
		p := math.Exp(float64(lp))
		if p == 0 {
			continue
		}
		kl += p * (float64(lp) - (float64(logits[i]) - lse))
	}
	return max(kl, 0)
}
