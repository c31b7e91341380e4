package eval

import (
	"fmt"

	"github.com/llqt/llqt/kernels"
)

// The transformer block of the Llama architecture, step by step. Attention
// itself (the KV cache and the softmax over it) is in attention.go.

// forward runs the transformer over the nb tokens at positions p0.. and
// leaves the final residual stream in c.x (output turns it into logits).
// It is llama.cpp's llm_build_llama: embed the tokens, then in every layer
// an attention sub-block and a feed-forward sub-block, each added to the
// residual stream x after an RMS norm of its input.
func (c *Context) forward(tokens []int32, p0 int) error {
	m := c.m
	h := m.Hparams
	nb := len(tokens)
	d := h.NEmbd
	qDim, kDim := h.NHead*h.HeadDimK, h.NHeadKV*h.HeadDimK
	// Embed: each token's row of token_embd (dequantized) starts the
	// residual stream; the RoPE angles of its position are computed once
	// for all layers.
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

		// Attention sub-block: x += Wo · attention(RoPE(Wq·n), RoPE(Wk·n), Wv·n)
		// with n = RMSNorm(x)·attn_norm.
		for i := range nb {
			rmsNorm(xb[i*d:(i+1)*d], x[i*d:(i+1)*d], layer.AttnNorm, h.RMSEps)
		}
		// The three projections share their input: one conversion, one
		// parallel loop.
		c.matmul3(c.q, layer.Wq, c.k, layer.Wk, c.v, layer.Wv, xb, nb)
		// Rotate queries and keys by their positions.
		for i := range nb {
			cs := c.ropeCS[i*h.NRot : (i+1)*h.NRot]
			c.rope.apply(c.q[i*qDim:(i+1)*qDim], h.NHead, h.HeadDimK, cs)
			c.rope.apply(c.k[i*kDim:(i+1)*kDim], h.NHeadKV, h.HeadDimK, cs)
		}
		// An F16 cache cannot hold a value past ±65504, and a value that is
		// not finite poisons every later score: stop here, naming the layer
		// and position, rather than print a NaN perplexity.
		if err := c.checkQKV(l, nb, p0); err != nil {
			return err
		}
		// Append the new keys and values to the cache, then attend over
		// every cached position (attention.go).
		c.storeKV(l, nb, p0)
		c.attention(l, nb, p0)
		c.product(xb2, layer.Wo, c.att, nb)
		for i := range x {
			x[i] += xb2[i]
		}

		// Feed-forward sub-block (SwiGLU): x += Wdown · (silu(Wgate·n) ⊙ Wup·n)
		// with n = RMSNorm(x)·ffn_norm.
		for i := range nb {
			rmsNorm(xb[i*d:(i+1)*d], x[i*d:(i+1)*d], layer.FFNNorm, h.RMSEps)
		}
		c.matmul3(c.gate, layer.WGate, c.up, layer.WUp, nil, nil, xb, nb)
		// SiLU costs tens of microseconds per token (an exp per n_ff
		// value): run it on the workers rather than leave them idle.
		c.glu.n = nb * h.NFF
		kernels.Parallel(c.m.threads, (c.glu.n+gluChunk-1)/gluChunk, c.gluJob)
		c.product(xb2, layer.WDown, c.gate[:nb*h.NFF], nb)
		for i := range x {
			x[i] += xb2[i]
		}
		if err := checkFinite(x, d, l, p0, "residual stream"); err != nil {
			return err
		}
	}
	return nil
}

// matmul3 computes the products of two or three weights (w3 nil for two)
// with the same nb activation rows x, converting x once and splitting all
// the work in one parallel loop.
func (c *Context) matmul3(d1 []float32, w1 *Weight, d2 []float32, w2 *Weight, d3 []float32, w3 *Weight, x []float32, nb int) {
	if c.observe != nil {
		for _, w := range []*Weight{w1, w2, w3} {
			if w != nil {
				c.observe(w.Name, x[:nb*w.Cols], nb, w.Cols)
			}
		}
	}
	k := 2
	c.mats[0], c.dsts[0] = w1.matrix(), d1
	c.mats[1], c.dsts[1] = w2.matrix(), d2
	if w3 != nil {
		c.mats[2], c.dsts[2] = w3.matrix(), d3
		k = 3
	}
	kernels.MatMulMany(c.dsts[:k], c.mats[:k], x, nb, c.m.threads)
	clear(c.dsts[:])
	// Run-time LoRA adapters (lora.go) add scale·B(A·x) to each product.
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
	lo, hi := t*gluChunk, min((t+1)*gluChunk, c.glu.n)
	g, u := c.gate[lo:hi], c.up[lo:hi]
	for i, v := range g {
		g[i] = silu(v) * u[i]
	}
}
