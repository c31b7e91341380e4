package eval

import (
	"fmt"
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
	ropes  []rope // one per RoPE variant of the model

	// KV cache per layer, [kv head][position][head dim], in F16 or F32:
	// kRaw holds the bytes (K of one head is a matrix the kernels multiply
	// the queries with), kF32/vF32 view the same memory as floats when the
	// cache is F32.
	kvType     ggml.Type
	kRaw, vRaw [][]byte
	kF32, vF32 [][]float32

	x, xb, xb2 []float32   // [ubatch][n_embd]
	q          []float32   // [ubatch][n_head*head_dim_k]
	k, v       []float32   // [ubatch][n_head_kv*head_dim]
	att        []float32   // [ubatch][n_head*head_dim_v]
	gate, up   []float32   // [ubatch][n_ff]
	ropeCS     [][]float32 // per RoPE variant: [ubatch][n_rot] cos/sin pairs
	logits     []float32

	// Mixture of experts: the router's logits, the rows routed to one
	// expert and their outputs, each token's choice, and the weighted
	// outputs per (token, slot) summed in slot order as llama.cpp does.
	moe moeScratch

	// Attention runs over chunks of attnChunk tokens: qGroup gathers one KV
	// group's queries, scores holds their products with every cached key.
	attnChunk int
	qGroup    []float32 // [attnChunk*group][head_dim_k]
	scores    []float32 // [attnChunk*n_head][n_ctx]

	// Argument buffers of the fused products (query, key and value; gate
	// and up), kept here so that passing them allocates nothing.
	mats [3]kernels.Matrix
	dsts [3][]float32

	// observe, when set, sees the input of every weight product (Observe).
	observe ProductObserver

	// The parallel loops of the forward pass run these methods, bound once
	// so that starting a loop allocates nothing; glu and attn hold the
	// parameters of the loop in flight.
	gluJob  func(task int)  // bound to gluTask
	attnJob func(task int)  // bound to attentionTask
	glu     struct{ n int } // gate values to compute
	attn    attentionJob
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
	c := &Context{m: m, nCtx: nCtx, ubatch: min(nCtx, m.ubatch()), kvType: m.kvType}
	ub := c.ubatch
	for _, p := range m.ropes {
		c.ropes = append(c.ropes, newRope(h, p, m.style.neox, nCtx))
		c.ropeCS = append(c.ropeCS, make([]float32, ub*h.NRot))
	}
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
	c.x = make([]float32, ub*h.NEmbd)
	c.xb = make([]float32, ub*h.NEmbd)
	c.xb2 = make([]float32, ub*h.NEmbd)
	c.q = make([]float32, ub*h.NHead*h.HeadDimK)
	c.k = make([]float32, ub*kvK)
	c.v = make([]float32, ub*kvV)
	c.att = make([]float32, ub*h.NHead*h.HeadDimV)
	c.gate = make([]float32, ub*h.NFF)
	c.up = make([]float32, ub*h.NFF)
	c.moe = newMoEScratch(m, ub)
	c.logits = make([]float32, h.NVocab)
	c.attnChunk = max(1, min(ub, maxAttnChunk, maxScores/(h.NHead*nCtx)))
	c.qGroup = make([]float32, c.attnChunk*(h.NHead/h.NHeadKV)*h.HeadDimK)
	c.scores = make([]float32, c.attnChunk*h.NHead*nCtx)
	c.attnJob = c.attentionTask
	c.gluJob = c.gluTask
	return c
}

// ubatch is the micro-batch from the options, 512 by default.
func (m *Model) ubatch() int {
	if m.opt.UBatch > 0 {
		return m.opt.UBatch
	}
	return maxUBatch
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
			if err := checkFinite(logits[start*h.NVocab:(start+nb)*h.NVocab], h.NVocab, -1, c.pos-nb, "logit"); err != nil {
				return nil, err
			}
		case start+nb == n:
			c.output(logits, nb-1, 1)
			if err := checkFinite(logits[:h.NVocab], h.NVocab, -1, c.pos-1, "logit"); err != nil {
				return nil, err
			}
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
	c.product(dst, c.m.Output, c.xb, count)
	if cap := c.m.style.finalSoftcap; cap != 0 {
		softcap(dst[:count*c.m.Hparams.NVocab], cap)
	}
}

// A ProductObserver sees the input of a weight product: rows activation
// rows of cols values each, about to be multiplied with the weight tensor
// name (its GGUF name). x is only valid during the call.
type ProductObserver = func(name string, x []float32, rows, cols int)

// Observe makes f see every weight product of the forward passes that
// follow (nil stops it), in the order the products are computed: the
// importance-matrix collector's hook (llama.cpp's eval callback).
func (c *Context) Observe(f ProductObserver) { c.observe = f }

// checkQKV refuses queries, keys and values that an F16 cache cannot hold
// (ggml would store infinities and every later score would be NaN; the
// queries are rounded to the cache type for the product) or that are not
// finite, naming the layer and token position.
func (c *Context) checkQKV(l, nb, p0 int) error {
	h := c.m.Hparams
	check := checkFinite
	if c.kvType == ggml.TypeF16 {
		check = checkF16
	}
	qDim, kDim, vDim := h.NHead*h.HeadDimK, h.NHeadKV*h.HeadDimK, h.NHeadKV*h.HeadDimV
	if err := check(c.k[:nb*kDim], kDim, l, p0, "key"); err != nil {
		return err
	}
	if err := check(c.v[:nb*vDim], vDim, l, p0, "value"); err != nil {
		return err
	}
	return check(c.q[:nb*qDim], qDim, l, p0, "query")
}
