package eval

import (
	"math"

	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/kernels"
)

// Attention over the KV cache: the cache holds, per layer and KV head, the
// keys and values of every position so far (F16 by default, as llama.cpp).
// Each query head attends over its KV group's cached positions up to its
// own (causal), and on a sliding-window layer only the last Window of them:
// scores = q·kᵀ/√d (or q·kᵀ with queries scaled before, blockStyle),
// soft-capped where the architecture says so, softmax, then the weighted sum
// of values.

// scoreBlock is the tokens of a prompt chunk whose scores are one product
// (see attention): each block's product takes the keys its last token sees.
const scoreBlock = 64

// attentionJob holds the parameters of the attention loop in flight (see
// attention): layer, the chunk's first token and size, the position of the
// first new token, the keys visible to the chunk's last token, and whether
// each task computes its own query-key scores.
type attentionJob struct {
	layer, tok0, n, p0, nPos int
	ownScores                bool
	window                   int // Layer.Window
}

// storeKV writes the nb new keys and values of layer l into the cache.
func (c *Context) storeKV(l, nb, p0 int) {
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
		ownScores := n <= 2 // generation: each task computes its own scores
		if !ownScores {
			// A prompt chunk: gather each KV group's queries; Q·Kᵀ is then
			// one product with the group's cached keys per block of
			// scoreBlock tokens, over the keys the block's last token sees
			// (the causal mask would discard the others' scores).
			for g := range h.NHeadKV {
				for i := range n {
					src := c.q[(t0+i)*qDim+g*group*hdK : (t0+i)*qDim+(g+1)*group*hdK]
					copy(c.qGroup[i*group*hdK:], src)
				}
				for b0 := 0; b0 < n; b0 += scoreBlock {
					b1 := min(b0+scoreBlock, n)
					seen := p0 + t0 + b1
					keys := kernels.Matrix{Type: c.kvType, Rows: seen, Cols: hdK,
						Data: c.kRaw[l][es*g*c.nCtx*hdK : es*(g*c.nCtx+seen)*hdK]}
					kernels.MatMul(c.scores[(g*n+b0)*group*nPos:], keys, c.qGroup[b0*group*hdK:], (b1-b0)*group, c.m.threads)
				}
			}
		}
		// Scale, softmax and the weighted sum of values, per (token, head).
		c.attn = attentionJob{layer: l, tok0: t0, n: n, p0: p0, nPos: nPos, ownScores: ownScores, window: c.m.Layers[l].Window}
		kernels.Parallel(c.m.threads, n*h.NHead, c.attnJob)
	}
}

// attentionTask finishes one (token, head) row of the chunk in flight:
// scores (when the job says so), scale, causal softmax, and the weighted
// sum of values.
func (c *Context) attentionTask(t int) {
	h := c.m.Hparams
	l, t0, n, p0, nPos := c.attn.layer, c.attn.tok0, c.attn.n, c.attn.p0, c.attn.nPos
	hdK, hdV := h.HeadDimK, h.HeadDimV
	group := h.NHead / h.NHeadKV
	st := c.m.style
	scale := float32(1) // queries were scaled before (blockStyle.queryScale)
	if st.queryScale == 0 {
		scale = 1 / float32(math.Sqrt(float64(hdK)))
	}
	i, head := t/h.NHead, t%h.NHead
	g, hh := head/group, head%group
	// Causal mask: token i of the chunk sees the cached positions up to
	// its own, and with a sliding window only those at distance below
	// it: the positions [lo, visible).
	visible := p0 + t0 + i + 1
	lo := 0
	if w := c.attn.window; w > 0 {
		lo = max(0, visible-w)
	}
	// The score row: its token block's rows start where the block's first
	// token's rows would at stride nPos, at the stride of the keys the
	// block saw (see attention).
	b0 := i / scoreBlock * scoreBlock
	stride := p0 + t0 + min(b0+scoreBlock, n) // nPos for generation (n ≤ 2)
	at := (g*n+b0)*group*nPos + ((i-b0)*group+hh)*stride
	sc := c.scores[at+lo : at+visible]
	if c.attn.ownScores { // generation: this task computes its own scores
		es := c.kvType.TypeSize()
		q0 := (t0+i)*h.NHead*hdK + head*hdK
		keys := kernels.Matrix{Type: c.kvType, Rows: visible - lo, Cols: hdK,
			Data: c.kRaw[l][es*(g*c.nCtx+lo)*hdK : es*(g*c.nCtx+visible)*hdK]}
		kernels.MatMul(sc, keys, c.q[q0:q0+hdK], 1, 1)
	}
	// Attention weights: softmax(softcap(q·k)·scale).
	if st.attnSoftcap != 0 {
		softcap(sc, st.attnSoftcap)
	}
	if scale != 1 {
		for j := range sc {
			sc[j] *= scale
		}
	}
	softmaxInPlace(sc)
	// The head's output: the weighted sum of the values.
	out := c.att[((t0+i)*h.NHead+head)*hdV : ((t0+i)*h.NHead+head+1)*hdV]
	if c.kvType == ggml.TypeF16 {
		// ggml rounds the attention weights to the cache's F16 too.
		kernels.RoundF16(sc, sc)
		kernels.WeightedSumF16(out, sc, c.vRaw[l][2*(g*c.nCtx+lo)*hdV:])
	} else {
		clear(out)
		vc := c.vF32[l][(g*c.nCtx+lo)*hdV:]
		for j, p := range sc {
			row := vc[j*hdV : (j+1)*hdV]
			for e := range out {
				out[e] += p * row[e]
			}
		}
	}
}
