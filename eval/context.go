package eval

import (
	"fmt"
	"math"
	"unsafe"

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

	// KV cache per layer, [kv head][position][head dim], in F16 or F32:
	// kRaw holds the bytes (K of one head is a matrix the kernels multiply
	// the queries with), kF32/vF32 view the same memory as floats when the
	// cache is F32.
	kvType     ggml.Type
	kRaw, vRaw [][]byte
	kF32, vF32 [][]float32

	x, xb, xb2 []float32 // [ubatch][n_embd]
	q          []float32 // [ubatch][n_head*head_dim_k]
	k, v       []float32 // [ubatch][n_head_kv*head_dim]
	att        []float32 // [ubatch][n_head*head_dim_v]
	gate, up   []float32 // [ubatch][n_ff]
	ropeCS     []float32 // [ubatch][n_rot] cos/sin pairs
	logits     []float32

	// Attention runs over chunks of attnChunk tokens: qGroup gathers one KV
	// group's queries, scores holds their products with every cached key.
	attnChunk int
	qGroup    []float32 // [attnChunk*group][head_dim_k]
	scores    []float32 // [attnChunk*n_head][n_ctx]

	// Argument buffers of the fused products (query, key and value; gate
	// and up), kept here so that passing them allocates nothing.
	mats [3]kernels.Matrix
	dsts [3][]float32

	gluJob  func(task int) // bound to gluTask
	gluN    int            // gate values of the job in flight
	attnJob func(task int)
	// Parameters of the attention job in flight; jobScores says whether its
	// tasks compute their own query-key products.
	jobLayer, jobTok0, jobN, jobP0, jobKV int
	jobScores                             bool
}

// maxScores bounds the attention score buffer (floats), and maxAttnChunk
// the tokens whose attention is computed together: the product with the keys
// covers every key visible to the chunk's last token, so smaller chunks
// waste less on masked positions.
const (
	maxScores    = 4 << 20
	maxAttnChunk = 64
)

// DefaultContext caps the context NewContext picks when none is asked for.
const DefaultContext = 4096

// NewContext makes a context for sequences of up to nCtx tokens (the
// model's training context, at most DefaultContext, when nCtx <= 0).
func (m *Model) NewContext(nCtx int) *Context {
	h := m.Hparams
	if nCtx <= 0 {
		// Like llama-cli, default to the training context but at most
		// DefaultContext tokens: a file's context_length (possibly a lie,
		// possibly 128k) must not size the KV cache unasked.
		nCtx = min(h.NCtxTrain, DefaultContext)
		if nCtx <= 0 {
			nCtx = DefaultContext
		}
	}
	c := &Context{m: m, nCtx: nCtx, ubatch: min(nCtx, maxUBatch), rope: newRope(h, m.RopeFreqs), kvType: m.kvType}
	kvK, kvV := h.NHeadKV*h.HeadDimK, h.NHeadKV*h.HeadDimV
	for range h.NLayer {
		if m.kvType == ggml.TypeF16 {
			c.kRaw = append(c.kRaw, make([]byte, 2*nCtx*kvK))
			c.vRaw = append(c.vRaw, make([]byte, 2*nCtx*kvV))
		} else {
			kf, vf := make([]float32, nCtx*kvK), make([]float32, nCtx*kvV)
			c.kF32, c.vF32 = append(c.kF32, kf), append(c.vF32, vf)
			c.kRaw, c.vRaw = append(c.kRaw, f32Bytes(kf)), append(c.vRaw, f32Bytes(vf))
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
	c.attnChunk = max(1, min(ub, maxAttnChunk, maxScores/(h.NHead*nCtx)))
	c.qGroup = make([]float32, c.attnChunk*(h.NHead/h.NHeadKV)*h.HeadDimK)
	c.scores = make([]float32, c.attnChunk*h.NHead*nCtx)
	c.attnJob = c.attentionTask
	c.gluJob = c.gluTask
	return c
}

// f32Bytes views a float32 slice as its bytes.
func f32Bytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}

// Close releases the context; it must not be used after. The worker
// goroutines belong to package kernels and are shared, so there is nothing
// to stop; Close exists so that callers need not know that.
func (c *Context) Close() {}

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
	es := c.kvType.TypeSize()
	for l := range h.NLayer {
		for g := range h.NHeadKV {
			k0, v0 := es*g*c.nCtx*h.HeadDimK, es*g*c.nCtx*h.HeadDimV
			copy(c.kRaw[l][k0:k0+es*src.pos*h.HeadDimK], src.kRaw[l][k0:])
			copy(c.vRaw[l][v0:v0+es*src.pos*h.HeadDimV], src.vRaw[l][v0:])
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
	qDim, kDim := h.NHead*h.HeadDimK, h.NHeadKV*h.HeadDimK
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
		c.matmul3(c.q, layer.Wq, c.k, layer.Wk, c.v, layer.Wv, xb, nb)
		for i := range nb {
			cs := c.ropeCS[i*h.NRot : (i+1)*h.NRot]
			c.rope.apply(c.q[i*qDim:(i+1)*qDim], h.NHead, h.HeadDimK, cs)
			c.rope.apply(c.k[i*kDim:(i+1)*kDim], h.NHeadKV, h.HeadDimK, cs)
		}
		c.store(l, nb, p0)
		c.attention(l, nb, p0)

		m.matmul(xb2, layer.Wo, c.att, nb)
		for i := range x {
			x[i] += xb2[i]
		}
		for i := range nb {
			rmsNorm(xb[i*d:(i+1)*d], x[i*d:(i+1)*d], layer.FFNNorm, h.RMSEps)
		}
		c.matmul3(c.gate, layer.WGate, c.up, layer.WUp, nil, nil, xb, nb)
		// SiLU costs tens of microseconds per token (an exp per n_ff
		// value): run it on the workers rather than leave them idle.
		c.gluN = nb * h.NFF
		kernels.Parallel(c.m.threads, (c.gluN+gluChunk-1)/gluChunk, c.gluJob)
		m.matmul(xb2, layer.WDown, c.gate[:nb*h.NFF], nb)
		for i := range x {
			x[i] += xb2[i]
		}
	}
	return nil
}

// matmul3 computes the products of two or three weights (w3 nil for two)
// with the same nb activation rows x, converting x once and splitting all
// the work in one parallel loop.
func (c *Context) matmul3(d1 []float32, w1 *Weight, d2 []float32, w2 *Weight, d3 []float32, w3 *Weight, x []float32, nb int) {
	k := 2
	c.mats[0], c.dsts[0] = w1.matrix(), d1
	c.mats[1], c.dsts[1] = w2.matrix(), d2
	if w3 != nil {
		c.mats[2], c.dsts[2] = w3.matrix(), d3
		k = 3
	}
	kernels.MatMulMany(c.dsts[:k], c.mats[:k], x, nb, c.m.threads)
	clear(c.dsts[:])
	w1.addLoRA(d1, x, nb, c.m.threads)
	w2.addLoRA(d2, x, nb, c.m.threads)
	if w3 != nil {
		w3.addLoRA(d3, x, nb, c.m.threads)
	}
}

// gluChunk is the gate values one SiLU task covers.
const gluChunk = 1024

// gluTask computes gate = silu(gate)·up over one chunk of the values.
func (c *Context) gluTask(t int) {
	lo, hi := t*gluChunk, min((t+1)*gluChunk, c.gluN)
	g, u := c.gate[lo:hi], c.up[lo:hi]
	for i, v := range g {
		g[i] = silu(v) * u[i]
	}
}

// store writes the nb new keys and values of layer l into the cache.
func (c *Context) store(l, nb, p0 int) {
	h := c.m.Hparams
	hdK, hdV := h.HeadDimK, h.HeadDimV
	kDim, vDim := h.NHeadKV*hdK, h.NHeadKV*hdV
	for i := range nb {
		for g := range h.NHeadKV {
			kSrc := c.k[i*kDim+g*hdK : i*kDim+(g+1)*hdK]
			vSrc := c.v[i*vDim+g*hdV : i*vDim+(g+1)*hdV]
			kOff := (g*c.nCtx + p0 + i) * hdK
			vOff := (g*c.nCtx + p0 + i) * hdV
			if c.kvType == ggml.TypeF16 {
				kernels.F32ToF16(c.kRaw[l][2*kOff:2*(kOff+hdK)], kSrc)
				kernels.F32ToF16(c.vRaw[l][2*vOff:2*(vOff+hdV)], vSrc)
			} else {
				copy(c.kF32[l][kOff:kOff+hdK], kSrc)
				copy(c.vF32[l][vOff:vOff+hdV], vSrc)
			}
		}
	}
}

// attention computes causal attention of the nb new tokens of layer l over
// every cached position. For a prompt chunk, Q·Kᵀ of each KV group is one
// matrix product (the kernels round the queries to the cache type, as ggml
// does) and softmax and the weighted sum of V run per (token, head) in a
// parallel loop. For one or two tokens (generation) each (token, head) task
// also computes its own scores with the same kernel, which gives the same
// bits with one parallel loop instead of one per KV group.
func (c *Context) attention(l, nb, p0 int) {
	h := c.m.Hparams
	group := h.NHead / h.NHeadKV
	hdK := h.HeadDimK
	qDim := h.NHead * hdK
	es := c.kvType.TypeSize()
	for t0 := 0; t0 < nb; t0 += c.attnChunk {
		n := min(c.attnChunk, nb-t0)
		nPos := p0 + t0 + n // keys visible to the chunk's last token
		c.jobScores = n <= 2
		if !c.jobScores {
			for g := range h.NHeadKV {
				for i := range n {
					src := c.q[(t0+i)*qDim+g*group*hdK : (t0+i)*qDim+(g+1)*group*hdK]
					copy(c.qGroup[i*group*hdK:], src)
				}
				keys := kernels.Matrix{Type: c.kvType, Rows: nPos, Cols: hdK,
					Data: c.kRaw[l][es*g*c.nCtx*hdK : es*(g*c.nCtx+nPos)*hdK]}
				kernels.MatMul(c.scores[g*n*group*nPos:], keys, c.qGroup, n*group, c.m.threads)
			}
		}
		c.jobLayer, c.jobTok0, c.jobN, c.jobP0, c.jobKV = l, t0, n, p0, nPos
		kernels.Parallel(c.m.threads, n*h.NHead, c.attnJob)
	}
}

// attentionTask finishes one (token, head) row of the chunk in flight:
// scores (when the job says so), scale, causal softmax, and the weighted
// sum of values.
func (c *Context) attentionTask(t int) {
	h := c.m.Hparams
	l, t0, n, p0, nPos := c.jobLayer, c.jobTok0, c.jobN, c.jobP0, c.jobKV
	hdK, hdV := h.HeadDimK, h.HeadDimV
	group := h.NHead / h.NHeadKV
	scale := 1 / float32(math.Sqrt(float64(hdK)))
	i, head := t/h.NHead, t%h.NHead
	g, hh := head/group, head%group
	row := g*n*group + i*group + hh
	visible := p0 + t0 + i + 1
	sc := c.scores[row*nPos : row*nPos+visible]
	if c.jobScores {
		es := c.kvType.TypeSize()
		q0 := (t0+i)*h.NHead*hdK + head*hdK
		keys := kernels.Matrix{Type: c.kvType, Rows: visible, Cols: hdK,
			Data: c.kRaw[l][es*g*c.nCtx*hdK : es*(g*c.nCtx+visible)*hdK]}
		kernels.MatMul(sc, keys, c.q[q0:q0+hdK], 1, 1)
	}
	for j := range sc {
		sc[j] *= scale
	}
	softmaxInPlace(sc)
	out := c.att[((t0+i)*h.NHead+head)*hdV : ((t0+i)*h.NHead+head+1)*hdV]
	clear(out)
	if c.kvType == ggml.TypeF16 {
		// ggml rounds the attention weights to the cache's F16 too.
		kernels.RoundF16(sc, sc)
		vc := c.vRaw[l][2*g*c.nCtx*hdV:]
		for j, p := range sc {
			kernels.AxpyF16(out, p, vc[2*j*hdV:2*(j+1)*hdV])
		}
	} else {
		vc := c.vF32[l][g*c.nCtx*hdV:]
		for j, p := range sc {
			row := vc[j*hdV : (j+1)*hdV]
			for e := range out {
				out[e] += p * row[e]
			}
		}
	}
}
