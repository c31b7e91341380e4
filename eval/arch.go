package eval

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Architectures. Every supported GGUF general.architecture has a file
// arch_<name>.go with its loader: it reads the architecture's own
// hyperparameters and tensors into the Model and sets the few switches by
// which its block differs from Llama's (blockStyle, and the optional fields
// of Layer). The forward pass (block.go, attention.go) is shared and reads
// only those; adding an architecture is its file plus one line here.

// archLoader fills m.Layers (and any model-level tensors beyond the
// embedding, output norm and output matrix, which newModel loads) for one
// architecture. m.Hparams holds the common hyperparameters.
type archLoader func(m *Model) error

// archs maps general.architecture to its loader.
var archs = map[string]archLoader{
	"llama":  loadLlama,  // Llama 1–3, Mistral, Mixtral (arch_llama.go)
	"qwen2":  loadQwen2,  // arch_qwen2.go
	"qwen3":  loadQwen3,  // arch_qwen3.go
	"gemma":  loadGemma,  // arch_gemma.go
	"gemma2": loadGemma2, // arch_gemma2.go
	"gemma3": loadGemma3, // arch_gemma3.go
	"phi3":   loadPhi3,   // arch_phi3.go
}

// SupportedArchitectures lists the GGUF architectures the engine runs,
// sorted.
func SupportedArchitectures() []string {
	return slices.Sorted(maps.Keys(archs))
}

// blockStyle holds the model-wide switches of the shared forward pass. The
// zero value is Llama's block.
type blockStyle struct {
	// neox rotates the pairs (x[i], x[i+n_rot/2]) of each head (GGUF files
	// of every architecture but llama, whose converter permutes Q and K so
	// that adjacent pairs rotate).
	neox bool
	// embedScale multiplies the token embeddings (Gemma: √n_embd); 0: none.
	embedScale float32
	// queryScale multiplies the queries after RoPE and the scores are then
	// not scaled (Gemma, Phi-3 do this); 0: the scores are scaled by
	// 1/√head_dim instead (Llama). The two differ in rounding only, since
	// the queries are rounded to the KV cache type after the scale.
	queryScale float32
	// attnSoftcap and finalSoftcap bound the attention scores and the
	// logits to ±cap by cap·tanh(x/cap) (Gemma 2); 0: none.
	attnSoftcap  float32
	finalSoftcap float32
	// gelu gates the feed-forward with GELU (tanh approximation) instead
	// of SiLU (Gemma).
	gelu bool
}

// Experts is a mixture-of-experts feed-forward (Mixtral): a router picks,
// per token, the NUsed experts of highest probability and the block's
// output is their weighted sum.
type Experts struct {
	Router         *Weight   // ffn_gate_inp: [n_embd, n_expert]
	Gate, Up, Down []*Weight // one view per expert into the stacked tensors
	NUsed          int
}

// blockName is the GGUF name of layer i's tensor s.
func blockName(i int, s string) string { return fmt.Sprintf("blk.%d.%s.weight", i, s) }

// blockBias is the GGUF name of the bias of layer i's tensor s.
func blockBias(i int, s string) string { return fmt.Sprintf("blk.%d.%s.bias", i, s) }

// hasTensor reports whether the file holds a tensor of that name.
func (m *Model) hasTensor(name string) bool {
	_, ok := m.File.Tensor(name)
	return ok
}

// optVector reads a 1-D tensor when the file has it, else returns nil.
func (m *Model) optVector(name string, n int) ([]float32, error) {
	if !m.hasTensor(name) {
		return nil, nil
	}
	return m.vector(name, n)
}

// loadAttention reads layer i's attention norm and its separate Q, K, V and
// output projections, the tensors every architecture but Phi-3 shares.
func (m *Model) loadAttention(i int, l *Layer) error {
	h := m.Hparams
	if err := m.loadLayerVectors(i, layerVector{&l.AttnNorm, "attn_norm", h.NEmbd}); err != nil {
		return err
	}
	return m.loadLayerMatrices(i,
		layerMatrix{&l.Wq, "attn_q", h.NEmbd, h.NHead * h.HeadDimK},
		layerMatrix{&l.Wk, "attn_k", h.NEmbd, h.NHeadKV * h.HeadDimK},
		layerMatrix{&l.Wv, "attn_v", h.NEmbd, h.NHeadKV * h.HeadDimV},
		layerMatrix{&l.Wo, "attn_output", h.NHead * h.HeadDimV, h.NEmbd},
	)
}

// loadFFN reads layer i's feed-forward norm and its dense gate, up and down
// projections.
func (m *Model) loadFFN(i int, l *Layer) error {
	h := m.Hparams
	if err := m.loadLayerVectors(i, layerVector{&l.FFNNorm, "ffn_norm", h.NEmbd}); err != nil {
		return err
	}
	return m.loadLayerMatrices(i,
		layerMatrix{&l.WGate, "ffn_gate", h.NEmbd, h.NFF},
		layerMatrix{&l.WUp, "ffn_up", h.NEmbd, h.NFF},
		layerMatrix{&l.WDown, "ffn_down", h.NFF, h.NEmbd},
	)
}

// loadQKNorms reads layer i's per-head query and key RMS norm weights
// (Qwen3, Gemma 3).
func (m *Model) loadQKNorms(i int, l *Layer) error {
	hd := m.Hparams.HeadDimK
	return m.loadLayerVectors(i,
		layerVector{&l.QNorm, "attn_q_norm", hd},
		layerVector{&l.KNorm, "attn_k_norm", hd},
	)
}

// loadPostNorms reads layer i's norms of the attention and feed-forward
// outputs (Gemma 2 and 3).
func (m *Model) loadPostNorms(i int, l *Layer) error {
	n := m.Hparams.NEmbd
	return m.loadLayerVectors(i,
		layerVector{&l.PostAttnNorm, "post_attention_norm", n},
		layerVector{&l.PostFFNNorm, "post_ffw_norm", n},
	)
}

// layerVector is one of a layer's 1-D tensors (norm weights): where it
// goes, its name within the layer and its length.
type layerVector struct {
	dst  *[]float32
	name string
	n    int
}

// loadLayerVectors reads layer i's vectors in order.
func (m *Model) loadLayerVectors(i int, vs ...layerVector) error {
	for _, v := range vs {
		var err error
		if *v.dst, err = m.vector(blockName(i, v.name), v.n); err != nil {
			return err
		}
	}
	return nil
}

// layerMatrix is one of a layer's weight matrices: where it goes, its name
// within the layer and its shape.
type layerMatrix struct {
	dst        **Weight
	name       string
	cols, rows int
}

// loadLayerMatrices reads layer i's matrices in order.
func (m *Model) loadLayerMatrices(i int, ws ...layerMatrix) error {
	for _, w := range ws {
		var err error
		if *w.dst, err = m.matrix(blockName(i, w.name), w.cols, w.rows); err != nil {
			return err
		}
	}
	return nil
}

// loadLayers runs load for every layer.
func (m *Model) loadLayers(load func(i int, l *Layer) error) error {
	for i := range m.Layers {
		if err := load(i, &m.Layers[i]); err != nil {
			return err
		}
	}
	return nil
}

// rows returns the view of rows [r0, r0+n) of w: a fused tensor (Phi-3's
// attn_qkv, ffn_up) or one expert of a stack is used as separate matrices
// without copying. Products with a view equal those with the whole tensor
// row by row.
func (w *Weight) rows(suffix string, r0, n int) *Weight {
	rb := w.RowBytes()
	return &Weight{Name: w.Name + suffix, Type: w.Type, Data: w.Data[r0*rb : (r0+n)*rb], Rows: n, Cols: w.Cols}
}

// archFloat reads an optional float key of the model's architecture.
func (m *Model) archFloat(name string, def float32) float32 {
	if v, ok := m.File.KV.Float(m.Hparams.Arch + "." + name); ok {
		return float32(v)
	}
	return def
}

// archInt reads an optional unsigned key of the model's architecture.
func (m *Model) archInt(name string, def int) (int, error) {
	v, ok, err := archUint(m.File.KV, m.Hparams.Arch+"."+name, m.Hparams.NLayer)
	if err != nil {
		return 0, err
	}
	if !ok {
		return def, nil
	}
	return v, nil
}

// unsupportedArch is the error for an architecture with no loader.
func unsupportedArch(arch string) error {
	return fmt.Errorf("architecture %q is not supported (supported: %s)", arch, strings.Join(SupportedArchitectures(), ", "))
}
