package eval

import (
	"fmt"
	"math"
	"runtime"

	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/kernels"
)

// maxUBatch bounds the tokens evaluated in one forward pass; longer inputs
// to Decode are processed in pieces of this size (llama.cpp's n_ubatch).
const maxUBatch = 512

// Context is one sequence being evaluated: its KV cache, its position and
// the scratch buffers of the forward pass, all allocated up front so that
// decoding allocates nothing.
type Context struct {
	m      *Model
	nCtx   int
	pos    int
	ubatch int
	rope   rope

	// KV cache per layer, [position][kv head][head dim], in F16 (kF16,
	// vF16) or F32 (kF32, vF32).
	kF16, vF16 [][]byte
	kF32, vF32 [][]float32

	x, xb, xb2 []float32 // [ubatch][n_embd]
	q          []float32 // [ubatch][n_head*head_dim_k]
	k, v       []float32 // [ubatch][n_head_kv*head_dim]
	att        []float32 // [ubatch][n_head*head_dim_v]
	gate, up   []float32 // [ubatch][n_ff]
	ropeCS     []float32 // [ubatch][n_rot] cos/sin pairs
	logits     []float32

	// Per worker scratch for attention.
	scores [][]float32
	qh     [][]float32

	pool    *workerPool
	attnJob func(worker int)
	tasks   taskCounter
	// Parameters of the attention job in flight.
	jobLayer, jobN, jobP0 int
}

// NewContext makes a context for sequences of up to nCtx tokens (the
// model's training context when nCtx <= 0).
func (m *Model) NewContext(nCtx int) *Context {
	h := m.Hparams
	if nCtx <= 0 {
		nCtx = h.NCtxTrain
	}
	c := &Context{m: m, nCtx: nCtx, ubatch: min(nCtx, maxUBatch), rope: newRope(h, m.RopeFreqs)}
	kvK, kvV := h.NHeadKV*h.HeadDimK, h.NHeadKV*h.HeadDimV
	c.kF16, c.vF16 = nil, nil
	for range h.NLayer {
		if m.kvType == ggml.TypeF16 {
			c.kF16 = append(c.kF16, make([]byte, 2*nCtx*kvK))
			c.vF16 = append(c.vF16, make([]byte, 2*nCtx*kvV))
		} else {
			c.kF32 = append(c.kF32, make([]float32, nCtx*kvK))
			c.vF32 = append(c.vF32, make([]float32, nCtx*kvV))
		}
	}
	ub := c.ubatch
	c.x = make([]float32, ub*h.NEmbd)
	c.xb = make([]float32, ub*h.NEmbd)
	c.xb2 = make([]float32, ub*h.NEmbd)
	c.q = make([]float32, ub*h.NHead*h.HeadDimK)
	c.k = make([]float32, ub*kvK)
	c.v = make([]float32, ub*kvV)
	c.att = make([]float32, ub*h.NHead*h.HeadDimV)
	c.gate = make([]float32, ub*h.NFF)
	c.up = make([]float32, ub*h.NFF)
	c.ropeCS = make([]float32, ub*h.NRot)
	c.logits = make([]float32, h.NVocab)
	c.scores = make([][]float32, m.threads)
	c.qh = make([][]float32, m.threads)
	for w := range m.threads {
		c.scores[w] = make([]float32, nCtx)
		c.qh[w] = make([]float32, h.HeadDimK)
	}
	c.pool = newWorkerPool(m.threads)
	c.attnJob = c.attentionWorker
	// The workers hold only the pool, so an abandoned context can be
	// collected; stop them then.
	runtime.AddCleanup(c, func(p *workerPool) { p.close() }, c.pool)
	return c
}

// Close stops the context's worker goroutines; the context must not be used
// after. Contexts that are dropped without Close are cleaned up by the
// garbage collector.
func (c *Context) Close() { c.pool.close() }

// Model returns the model the context evaluates.
func (c *Context) Model() *Model { return c.m }

// NCtx is the context size in tokens.
func (c *Context) NCtx() int { return c.nCtx }

// Pos is the number of tokens in the KV cache, i.e. the position of the
// next token.
func (c *Context) Pos() int { return c.pos }

// Reset empties the KV cache.
func (c *Context) Reset() { c.pos = 0 }

// Truncate drops cached tokens from position n on.
func (c *Context) Truncate(n int) {
	if n >= 0 && n < c.pos {
		c.pos = n
	}
}

// CopyFrom makes c's cache and position equal to src's (both from the same
// model with the same context size).
func (c *Context) CopyFrom(src *Context) error {
	if src.m != c.m || src.nCtx != c.nCtx {
		return fmt.Errorf("eval: copying a context of another model or size")
	}
	h := c.m.Hparams
	kvK, kvV := h.NHeadKV*h.HeadDimK, h.NHeadKV*h.HeadDimV
	for l := range h.NLayer {
		if c.kF16 != nil {
			copy(c.kF16[l][:2*src.pos*kvK], src.kF16[l])
			copy(c.vF16[l][:2*src.pos*kvV], src.vF16[l])
		} else {
			copy(c.kF32[l][:src.pos*kvK], src.kF32[l])
			copy(c.vF32[l][:src.pos*kvV], src.vF32[l])
		}
	}
	c.pos = src.pos
	return nil
}

// Decode appends tokens to the sequence at the current position and returns
// logits: len(tokens)×n_vocab of them (row i after token i) when allLogits,
// else only the last token's row. The slice is owned by the context and
// valid until the next call.
func (c *Context) Decode(tokens []int32, allLogits bool) ([]float32, error) {
	n := len(tokens)
	h := c.m.Hparams
	if n == 0 {
		return nil, fmt.Errorf("eval: Decode of no tokens")
	}
	if c.pos+n > c.nCtx {
		return nil, fmt.Errorf("eval: %d tokens at position %d exceed the context of %d", n, c.pos, c.nCtx)
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= h.NVocab {
			return nil, fmt.Errorf("eval: token %d at index %d is outside the vocabulary of %d", t, i, h.NVocab)
		}
	}
	out := h.NVocab
	if allLogits {
		out = n * h.NVocab
	}
	if cap(c.logits) < out {
		c.logits = make([]float32, out)
	}
	logits := c.logits[:out]
	for start := 0; start < n; start += c.ubatch {
		nb := min(c.ubatch, n-start)
		if err := c.forward(tokens[start:start+nb], c.pos); err != nil {
			return nil, err
		}
		c.pos += nb
		switch {
		case allLogits:
			c.output(logits[start*h.NVocab:], 0, nb)
		case start+nb == n:
			c.output(logits, nb-1, 1)
		}
	}
	return logits, nil
}

// output computes the logits of rows [first, first+count) of the residual
// stream into dst.
func (c *Context) output(dst []float32, first, count int) {
	d := c.m.Hparams.NEmbd
	for i := range count {
		r := first + i
		rmsNorm(c.xb[i*d:(i+1)*d], c.x[r*d:(r+1)*d], c.m.OutputNorm, c.m.Hparams.RMSEps)
	}
	c.m.matmul(dst, c.m.Output, c.xb, count)
}

// forward runs the transformer over nb tokens at positions p0.. and leaves
// the final residual stream in c.x.
func (c *Context) forward(tokens []int32, p0 int) error {
	m := c.m
	h := m.Hparams
	nb := len(tokens)
	d := h.NEmbd
	qDim, kDim, vDim := h.NHead*h.HeadDimK, h.NHeadKV*h.HeadDimK, h.NHeadKV*h.HeadDimV
	embRow := m.TokEmbd.RowBytes()
	for i, t := range tokens {
		src := m.TokEmbd.Data[int(t)*embRow : (int(t)+1)*embRow]
		if err := dequantizeRow(c.x[i*d:(i+1)*d], m.TokEmbd.Type, src); err != nil {
			return fmt.Errorf("eval: embedding of token %d: %w", t, err)
		}
		c.rope.cache(c.ropeCS[i*h.NRot:(i+1)*h.NRot], p0+i)
	}
	x, xb, xb2 := c.x[:nb*d], c.xb[:nb*d], c.xb2[:nb*d]
	for l := range m.Layers {
		layer := &m.Layers[l]
		for i := range nb {
			rmsNorm(xb[i*d:(i+1)*d], x[i*d:(i+1)*d], layer.AttnNorm, h.RMSEps)
		}
		m.matmul(c.q, layer.Wq, xb, nb)
		m.matmul(c.k, layer.Wk, xb, nb)
		m.matmul(c.v, layer.Wv, xb, nb)
		for i := range nb {
			cs := c.ropeCS[i*h.NRot : (i+1)*h.NRot]
			c.rope.apply(c.q[i*qDim:(i+1)*qDim], h.NHead, h.HeadDimK, cs)
			c.rope.apply(c.k[i*kDim:(i+1)*kDim], h.NHeadKV, h.HeadDimK, cs)
		}
		c.store(l, nb, p0)

		c.jobLayer, c.jobN, c.jobP0 = l, nb, p0
		c.tasks.reset()
		c.pool.run(c.attnJob)

		m.matmul(xb2, layer.Wo, c.att, nb)
		for i := range x {
			x[i] += xb2[i]
		}
		for i := range nb {
			rmsNorm(xb[i*d:(i+1)*d], x[i*d:(i+1)*d], layer.FFNNorm, h.RMSEps)
		}
		m.matmul(c.gate, layer.WGate, xb, nb)
		m.matmul(c.up, layer.WUp, xb, nb)
		g, u := c.gate[:nb*h.NFF], c.up[:nb*h.NFF]
		for i, v := range g {
			g[i] = silu(v) * u[i]
		}
		m.matmul(xb2, layer.WDown, g, nb)
		for i := range x {
			x[i] += xb2[i]
		}
	}
	_ = vDim
	return nil
}

// store writes the nb new keys and values of layer l into the cache.
func (c *Context) store(l, nb, p0 int) {
	h := c.m.Hparams
	kDim, vDim := h.NHeadKV*h.HeadDimK, h.NHeadKV*h.HeadDimV
	if c.kF16 != nil {
		kernels.F32ToF16(c.kF16[l][2*p0*kDim:2*(p0+nb)*kDim], c.k[:nb*kDim])
		kernels.F32ToF16(c.vF16[l][2*p0*vDim:2*(p0+nb)*vDim], c.v[:nb*vDim])
		return
	}
	copy(c.kF32[l][p0*kDim:], c.k[:nb*kDim])
	copy(c.vF32[l][p0*vDim:], c.v[:nb*vDim])
}

// attentionWorker computes causal attention for (token, head) tasks of the
// job in flight until none are left.
func (c *Context) attentionWorker(w int) {
	h := c.m.Hparams
	l, nb, p0 := c.jobLayer, c.jobN, c.jobP0
	hdK, hdV := h.HeadDimK, h.HeadDimV
	kDim, vDim := h.NHeadKV*hdK, h.NHeadKV*hdV
	group := h.NHead / h.NHeadKV
	scale := 1 / float32(math.Sqrt(float64(hdK)))
	f16 := c.kF16 != nil
	for {
		t := c.tasks.take()
		if t >= nb*h.NHead {
			return
		}
		i, head := t/h.NHead, t%h.NHead
		g := head / group
		pos := p0 + i
		q := c.q[(i*h.NHead+head)*hdK : (i*h.NHead+head+1)*hdK]
		out := c.att[(i*h.NHead+head)*hdV : (i*h.NHead+head+1)*hdV]
		sc := c.scores[w][:pos+1]
		if f16 {
			// ggml converts the query to the cache's F16 before the
			// product with K.
			qh := c.qh[w]
			for j, v := range q {
				qh[j] = roundF16(v)
			}
			kc := c.kF16[l]
			for j := range sc {
				off := 2 * (j*kDim + g*hdK)
				sc[j] = kernels.DotF16(kc[off:off+2*hdK], qh) * scale
			}
		} else {
			kc := c.kF32[l]
			for j := range sc {
				off := j*kDim + g*hdK
				sc[j] = kernels.DotF32(kc[off:off+hdK], q) * scale
			}
		}
		softmaxInPlace(sc)
		clear(out)
		if f16 {
			// ... and the attention weights to F16 before the product with V.
			vc := c.vF16[l]
			for j, p := range sc {
				off := 2 * (j*vDim + g*hdV)
				kernels.AxpyF16(out, roundF16(p), vc[off:off+2*hdV])
			}
		} else {
			vc := c.vF32[l]
			for j, p := range sc {
				off := j*vDim + g*hdV
				row := vc[off : off+hdV]
				for e := range out {
					out[e] += p * row[e]
				}
			}
		}
	}
}
