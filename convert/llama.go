package convert

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/safetensors"
)

// llama converts LlamaForCausalLM and MistralForCausalLM (the same graph:
// RMSNorm, rotary attention with optional GQA, SiLU-gated MLP) to GGUF
// architecture "llama", as convert_hf_to_gguf.py's LlamaModel does.
type llama struct {
	hp llamaHParams
}

func init() {
	Register(func() Architecture { return &llama{} }, "LlamaForCausalLM", "MistralForCausalLM")
}

type llamaHParams struct {
	blocks, hidden, ff, heads, kvHeads, headDim, vocab uint64
	tied                                               bool
}

func (l *llama) GGUFArch() string { return "llama" }

var layerRE = regexp.MustCompile(`^model\.layers\.(\d+)\.(.+)$`)

// llamaLayerNames maps a layer tensor's Hugging Face name (after
// "model.layers.N.", without .weight/.bias) to its GGUF name after "blk.N.".
var llamaLayerNames = map[string]string{
	"input_layernorm":          "attn_norm",
	"self_attn.q_proj":         "attn_q",
	"self_attn.k_proj":         "attn_k",
	"self_attn.v_proj":         "attn_v",
	"self_attn.o_proj":         "attn_output",
	"post_attention_layernorm": "ffn_norm",
	"mlp.gate_proj":            "ffn_gate",
	"mlp.up_proj":              "ffn_up",
	"mlp.down_proj":            "ffn_down",
}

var llamaGlobalNames = map[string]string{
	"model.embed_tokens": "token_embd",
	"model.norm":         "output_norm",
	"lm_head":            "output",
}

func (l *llama) readHParams(b *Builder) error {
	c := b.Config
	need := func(keys ...string) (uint64, error) {
		v, err := c.RequireUint32(keys...)
		return uint64(v), err
	}
	var err error
	hp := &l.hp
	if hp.blocks, err = need("n_layers", "num_hidden_layers", "n_layer", "num_layers"); err != nil {
		return err
	}
	if hp.hidden, err = need("hidden_size", "n_embd"); err != nil {
		return err
	}
	if hp.ff, err = need("intermediate_size", "n_inner"); err != nil {
		return err
	}
	if hp.heads, err = need("num_attention_heads", "n_head"); err != nil {
		return err
	}
	if hp.vocab, err = need("vocab_size"); err != nil {
		return err
	}
	hp.kvHeads = hp.heads
	if c.Has("num_key_value_heads") {
		if hp.kvHeads, err = need("num_key_value_heads"); err != nil {
			return err
		}
	}
	if c.Has("head_dim") {
		if hp.headDim, err = need("head_dim"); err != nil {
			return err
		}
	} else {
		if hp.hidden%hp.heads != 0 {
			return c.errf("hidden_size", "%d is not divisible by num_attention_heads %d (and no head_dim is given)", hp.hidden, hp.heads)
		}
		hp.headDim = hp.hidden / hp.heads
	}
	if hp.headDim%2 != 0 {
		return c.errf("head_dim", "%d is odd; rotary embeddings need pairs", hp.headDim)
	}
	if hp.heads%hp.kvHeads != 0 {
		return c.errf("num_key_value_heads", "%d does not divide num_attention_heads %d", hp.kvHeads, hp.heads)
	}
	if tied, ok, err := c.Bool("tie_word_embeddings"); err != nil {
		return err
	} else if ok {
		hp.tied = tied
	}
	return nil
}

// Check compares every tensor's shape with the one the config implies, and
// requires every layer's tensors.
func (l *llama) Check(b *Builder) error {
	if err := l.readHParams(b); err != nil {
		return err
	}
	hp := l.hp
	q, kv := hp.heads*hp.headDim, hp.kvHeads*hp.headDim
	layerShapes := map[string][]uint64{
		"input_layernorm.weight":          {hp.hidden},
		"post_attention_layernorm.weight": {hp.hidden},
		"self_attn.q_proj.weight":         {q, hp.hidden},
		"self_attn.k_proj.weight":         {kv, hp.hidden},
		"self_attn.v_proj.weight":         {kv, hp.hidden},
		"self_attn.o_proj.weight":         {hp.hidden, q},
		"mlp.gate_proj.weight":            {hp.ff, hp.hidden},
		"mlp.up_proj.weight":              {hp.ff, hp.hidden},
		"mlp.down_proj.weight":            {hp.hidden, hp.ff},
		"self_attn.q_proj.bias":           {q},
		"self_attn.k_proj.bias":           {kv},
		"self_attn.v_proj.bias":           {kv},
		"self_attn.o_proj.bias":           {hp.hidden},
		"mlp.gate_proj.bias":              {hp.ff},
		"mlp.up_proj.bias":                {hp.ff},
		"mlp.down_proj.bias":              {hp.hidden},
	}
	globalShapes := map[string][]uint64{
		"model.embed_tokens.weight": {hp.vocab, hp.hidden},
		"model.norm.weight":         {hp.hidden},
		"lm_head.weight":            {hp.vocab, hp.hidden},
	}
	why := fmt.Sprintf("hidden_size %d, intermediate_size %d, %d heads, %d kv heads, head_dim %d, vocab_size %d",
		hp.hidden, hp.ff, hp.heads, hp.kvHeads, hp.headDim, hp.vocab)
	for _, t := range b.Checkpoint.Tensors {
		if skipTensor(t.Name) {
			continue
		}
		want, ok := globalShapes[t.Name]
		if m := layerRE.FindStringSubmatch(t.Name); m != nil {
			bid, err := strconv.ParseUint(m[1], 10, 32)
			if err != nil || bid >= hp.blocks {
				return fmt.Errorf("%s: %w: tensor %s is for layer %s but config.json has %d layers",
					t.File.Path, ErrConfig, t.Name, m[1], hp.blocks)
			}
			want, ok = layerShapes[m[2]]
		}
		if !ok {
			return fmt.Errorf("%s: tensor %s cannot be mapped to a GGUF tensor of architecture llama", t.File.Path, t.Name)
		}
		if !equalShape(t.Shape, want) {
			return fmt.Errorf("%s: %w: tensor %s has shape %v but config.json (%s) implies %v",
				t.File.Path, ErrConfig, t.Name, t.Shape, why, want)
		}
	}
	required := []string{"model.embed_tokens.weight", "model.norm.weight"}
	if !hp.tied {
		required = append(required, "lm_head.weight")
	}
	for i := uint64(0); i < hp.blocks; i++ {
		for _, s := range []string{"input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
			"self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"} {
			required = append(required, fmt.Sprintf("model.layers.%d.%s.weight", i, s))
		}
	}
	for _, name := range required {
		if _, ok := b.Checkpoint.Tensor(name); !ok {
			return fmt.Errorf("%s: %w: tensor %s is missing from the checkpoint (config.json: %d layers, tie_word_embeddings %v)",
				b.Dir, ErrConfig, name, hp.blocks, hp.tied)
		}
	}
	return nil
}

func equalShape(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ExtraTensors adds rope_freqs.weight for Llama 3.1-style ("llama3") rope
// scaling.
func (l *llama) ExtraTensors(b *Builder) error {
	rs, ok, err := b.Config.Object("rope_scaling")
	if err != nil || !ok {
		return err
	}
	if rt, _ := rs.String("rope_type"); strings.ToLower(rt) != "llama3" {
		return nil
	}
	num := func(c *Config, key string, def float64) (float64, error) {
		v, ok, err := c.Float(key)
		if !ok {
			return def, err
		}
		return v, err
	}
	base, err := num(b.Config, "rope_theta", 10000)
	if err != nil {
		return err
	}
	factor, err := num(rs, "factor", 8)
	if err != nil {
		return err
	}
	low, err := num(rs, "low_freq_factor", 1)
	if err != nil {
		return err
	}
	high, err := num(rs, "high_freq_factor", 4)
	if err != nil {
		return err
	}
	old, err := num(rs, "original_max_position_embeddings", 8192)
	if err != nil {
		return err
	}
	factors, err := llama3RopeFactors(base, int(l.hp.headDim), factor, low, high, old)
	if err != nil {
		return fmt.Errorf("%s: %w: %v", b.Config.Path, ErrConfig, err)
	}
	b.Model.Tensors = append(b.Model.Tensors, &formats.Tensor{
		Name: "rope_freqs.weight", Shape: []uint64{uint64(len(factors))}, Type: ggml.TypeF32, Source: f32Source(factors),
	})
	return nil
}

// MapTensor renames a tensor and permutes q/k rows into llama.cpp's rotary
// layout.
func (l *llama) MapTensor(b *Builder, t *safetensors.Tensor) error {
	base, suffix, ok := cutSuffix(t.Name)
	if !ok {
		return fmt.Errorf("%s: tensor %s cannot be mapped (no .weight or .bias suffix)", t.File.Path, t.Name)
	}
	var name string
	if m := layerRE.FindStringSubmatch(base); m != nil {
		g, ok := llamaLayerNames[m[2]]
		if !ok {
			return fmt.Errorf("%s: tensor %s cannot be mapped to a GGUF tensor of architecture llama", t.File.Path, t.Name)
		}
		name = "blk." + m[1] + "." + g + suffix
	} else if g, ok := llamaGlobalNames[base]; ok {
		if base == "lm_head" && l.hp.tied {
			return nil // tied: llama.cpp reuses token_embd.weight
		}
		name = g + suffix
	} else {
		return fmt.Errorf("%s: tensor %s cannot be mapped to a GGUF tensor of architecture llama", t.File.Path, t.Name)
	}
	var tr []formats.Transform
	switch {
	case strings.HasSuffix(base, "self_attn.q_proj"):
		tr = append(tr, permuteRows{nHead: int(l.hp.heads)})
	case strings.HasSuffix(base, "self_attn.k_proj"):
		tr = append(tr, permuteRows{nHead: int(l.hp.kvHeads)})
	}
	return b.AddTensor(name, t, tr...)
}

func cutSuffix(name string) (base, suffix string, ok bool) {
	for _, s := range []string{".weight", ".bias"} {
		if b, found := strings.CutSuffix(name, s); found {
			return b, s, true
		}
	}
	return "", "", false
}

// Params writes the common hyperparameters, then vocab_size, the rotary
// dimension and rope scaling.
func (l *llama) Params(b *Builder) error {
	const arch = "llama"
	if err := b.CommonParams(arch); err != nil {
		return err
	}
	b.Add(arch+".vocab_size", uint32(l.hp.vocab))
	b.Add(arch+".rope.dimension_count", uint32(l.hp.headDim))
	rs, ok, err := b.Config.Object("rope_scaling")
	if err != nil || !ok || !rs.Has("factor") {
		return err
	}
	typ, _ := rs.String("type")
	if typ == "" {
		typ, _ = rs.String("rope_type")
	}
	factor, _, err := rs.Float("factor")
	if err != nil {
		return err
	}
	switch typ {
	case "linear":
		b.Add(arch+".rope.scaling.type", "linear")
		b.Add(arch+".rope.scaling.factor", float32(factor))
	case "yarn":
		b.Add(arch+".rope.scaling.type", "yarn")
		b.Add(arch+".rope.scaling.factor", float32(factor))
		orig, ok, err := rs.Uint32("original_max_position_embeddings")
		if err != nil {
			return err
		}
		if ok {
			b.Add(arch+".rope.scaling.original_context_length", orig)
		}
	}
	return nil
}

// Vocab writes the tokenizer: SentencePiece from tokenizer.model, else a
// GPT-2 style BPE from tokenizer.json (Llama 3), then the special tokens.
func (l *llama) Vocab(b *Builder) error {
	v, found, err := SentencePieceVocab(b.Dir, int(l.hp.vocab), b.Warn)
	if err != nil {
		return err
	}
	loadMerges := false
	nVocab := -1
	if found {
		nVocab = len(v.Tokens)
	} else {
		v, found, err = BPEVocab(b.Dir, int(l.hp.vocab))
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%s: %w: no tokenizer.model or tokenizer.json", b.Dir, ErrTokenizer)
		}
		loadMerges = true
	}
	v.add(b)
	sv, err := loadSpecialVocab(b.Dir, defaultSpecialTypes, nVocab, loadMerges, b.Warn)
	if err != nil {
		return err
	}
	if err := sv.add(b); err != nil {
		return err
	}
	// CodeLlama's infill tokens; of these gguf-py only has a writer for eot.
	if l.hp.vocab == 32016 {
		b.Add("tokenizer.ggml.eot_token_id", uint32(32010))
	}
	var tc map[string]any
	if _, err := readJSON(b.Dir, "tokenizer_config.json", &tc); err != nil {
		return err
	}
	if v, ok := tc["add_prefix_space"].(bool); ok {
		b.Add("tokenizer.ggml.add_space_prefix", v)
	}
	return nil
}
