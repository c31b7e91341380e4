package eval

import (
	"fmt"

	"github.com/llqt/llqt/kernels"
)

// The transformer block, step by step. It is Llama's block (llama.cpp's
// llm_build_llama) with the optional steps other architectures add: each is
// taken when its Layer field or blockStyle switch is set by the
// architecture's loader (arch_*.go). Attention itself (the KV cache and the
// softmax over it) is in attention.go.

// forward runs the transformer over the nb tokens at positions p0.. and
// leaves the final residual stream in c.x (output turns it into logits):
// embed the tokens, then in every layer an attention sub-block and a
// feed-forward sub-block, each added to the residual stream x after an RMS
// norm of its input.
func (c *Context) forward(tokens []int32, p0 int) error {
	m := c.m
	h := m.Hparams
	st := m.style
	nb := len(tokens)
	d := h.NEmbd
	qDim, kDim := h.NHead*h.HeadDimK, h.NHeadKV*h.HeadDimK
	// Embed: each token's row of token_embd (dequantized) starts the
	// residual stream (Gemma scales it by √n_embd); the RoPE angles of its
	// position are computed once for all layers, per RoPE variant.
	embRow := m.TokEmbd.RowBytes()
	for i, t := range tokens {
		src := m.TokEmbd.Data[int(t)*embRow : (int(t)+1)*embRow]
		row := c.x[i*d : (i+1)*d]
		if err := dequantizeRow(row, m.TokEmbd.Type, src); err != nil {
			return fmt.Errorf("eval: embedding of token %d: %w", t, err)
		}
		if st.embedScale != 0 {
			scale(row, st.embedScale)
		}
		for r := range c.ropes {
			c.ropes[r].cache(c.ropeCS[r][i*h.NRot:(i+1)*h.NRot], p0+i)
		}
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
		c.products(c.q, layer.Wq, c.k, layer.Wk, c.v, layer.Wv, xb, nb)
		if layer.Bq != nil { // Qwen2's biases
			addBias(c.q[:nb*qDim], layer.Bq)
			addBias(c.k[:nb*kDim], layer.Bk)
			addBias(c.v[:nb*h.NHeadKV*h.HeadDimV], layer.Bv)
		}
		if layer.QNorm != nil { // Qwen3, Gemma 3: RMS norm per head
			headNorm(c.q[:nb*qDim], layer.QNorm, h.RMSEps)
			headNorm(c.k[:nb*kDim], layer.KNorm, h.RMSEps)
		}
		// Rotate queries and keys by their positions.
		ro, cs := &c.ropes[layer.Rope], c.ropeCS[layer.Rope]
		for i := range nb {
			ci := cs[i*h.NRot : (i+1)*h.NRot]
			ro.apply(c.q[i*qDim:(i+1)*qDim], h.NHead, h.HeadDimK, ci)
			ro.apply(c.k[i*kDim:(i+1)*kDim], h.NHeadKV, h.HeadDimK, ci)
		}
		if st.queryScale != 0 {
			scale(c.q[:nb*qDim], st.queryScale)
		}
		// An F16 cache cannot hold a value past ±65504, and a value that is
		// not finite poisons every later score: stop here, naming the layer
		// and position, rather than print a NaN perplexity.
		if err := c.checkQKV(l, nb, p0); err != nil {
			return err
		}
		// Append the new keys and values to the cache, then attend over
		// the cached positions the layer sees (attention.go).
		c.storeKV(l, nb, p0)
		c.attention(l, nb, p0)
		c.product(xb2, layer.Wo, c.att, nb)
		if layer.PostAttnNorm != nil { // Gemma 2 and 3
			for i := range nb {
				rmsNorm(xb2[i*d:(i+1)*d], xb2[i*d:(i+1)*d], layer.PostAttnNorm, h.RMSEps)
			}
		}
		for i := range x {
			x[i] += xb2[i]
		}

		// Feed-forward sub-block: x += Wdown · (act(Wgate·n) ⊙ Wup·n) with
		// n = RMSNorm(x)·ffn_norm and act SiLU (SwiGLU) or GELU (Gemma);
		// or the experts' weighted sum (Mixtral).
		for i := range nb {
			rmsNorm(xb[i*d:(i+1)*d], x[i*d:(i+1)*d], layer.FFNNorm, h.RMSEps)
		}
		if layer.Experts != nil {
			c.moeFFN(layer.Experts, xb2, xb, nb)
		} else {
			c.ffn(xb2, layer.WGate, layer.WUp, layer.WDown, xb, nb)
		}
		if layer.PostFFNNorm != nil { // Gemma 2 and 3
			for i := range nb {
				rmsNorm(xb2[i*d:(i+1)*d], xb2[i*d:(i+1)*d], layer.PostFFNNorm, h.RMSEps)
			}
		}
		for i := range x {
			x[i] += xb2[i]
		}
		if err := checkFinite(x, d, l, p0, "residual stream"); err != nil {
			return err
		}
	}
	return nil
}

// ffn computes the gated feed-forward of nb rows of x into dst.
func (c *Context) ffn(dst []float32, gate, up, down *Weight, x []float32, nb int) {
	c.products(c.gate, gate, c.up, up, nil, nil, x, nb)
	// The activation costs tens of microseconds per token (an exp or tanh
	// per n_ff value): run it on the workers rather than leave them idle.
	c.glu.n = nb * gate.Rows
	kernels.Parallel(c.m.threads, (c.glu.n+gluChunk-1)/gluChunk, c.gluJob)
	c.product(dst, down, c.gate[:nb*gate.Rows], nb)
}

// product computes dst[i*w.Rows+r] = row r of w · x[i] for nb activation
// rows. Every weight product of the forward pass goes through it or
// products: the observer (Observe) sees its input first, and run-time LoRA
// adapters (lora.go) add scale·B(A·x) after.
func (c *Context) product(dst []float32, w *Weight, x []float32, nb int) {
	if c.observe != nil {
		c.observe(w.Name, x[:nb*w.Cols], nb, w.Cols)
	}
	kernels.MatMul(dst, w.matrix(), x, nb, c.m.threads)
	w.addLoRA(dst, x, nb, c.m.threads)
}

// products computes the products of two or three weights (w3 nil for two)
// with the same nb activation rows x, converting x once and splitting all
// the work in one parallel loop.
func (c *Context) products(d1 []float32, w1 *Weight, d2 []float32, w2 *Weight, d3 []float32, w3 *Weight, x []float32, nb int) {
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
	w1.addLoRA(d1, x, nb, c.m.threads)
	w2.addLoRA(d2, x, nb, c.m.threads)
	if w3 != nil {
		w3.addLoRA(d3, x, nb, c.m.threads)
	}
}

// gluChunk is the gate values one activation task covers.
const gluChunk = 1024

// gluTask computes gate = act(gate)·up over one chunk of the values.
func (c *Context) gluTask(t int) {
	lo, hi := t*gluChunk, min((t+1)*gluChunk, c.glu.n)
	g, u := c.gate[lo:hi], c.up[lo:hi]
	if c.m.style.gelu {
		if c.m.opt.ExactGELU {
			for i, v := range g {
				g[i] = gelu(v) * u[i]
			}
			return
		}
		for i, v := range g {
			g[i] = geluF16(v) * u[i]
		}
		return
	}
	kernels.SiLUMul(g, u)
}

// headNorm applies an RMS norm with weight w to each head (len(w) values)
// of x in place.
func headNorm(x, w []float32, eps float32) {
	n := len(w)
	for h := 0; h+n <= len(x); h += n {
		rmsNorm(x[h:h+n], x[h:h+n], w, eps)
	}
}

// addBias adds b to each row of x (rows of len(b)).
func addBias(x, b []float32) {
	for r := 0; r+len(b) <= len(x); r += len(b) {
		row := x[r : r+len(b)]
		for i, v := range b {
			row[i] += v
		}
	}
}

// scale multiplies x by s in place.
func scale(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}
