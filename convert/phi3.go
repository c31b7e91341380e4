package convert

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// phi3 converts Phi3ForCausalLM (Phi-3, Phi-3.5, Phi-4-mini) to GGUF
// architecture "phi3", as convert_hf_to_gguf.py's Phi3MiniModel does: fused
// qkv_proj (GGUF attn_qkv) and gate_up_proj (GGUF ffn_up, twice the
// intermediate size), a vocabulary padded to config vocab_size, and for
// LongRoPE ("su"/"longrope") or YaRN rope scaling the long and short factor
// tensors plus the attention factor.
type phi3 struct{ decoder }

func init() {
	Register(func() Architecture {
		return &phi3{decoder{arch: "phi3", layer: phi3LayerRules, global: llamaGlobalRules}}
	}, "Phi3ForCausalLM")
}

// phi3LayerRules: fused qkv and gate/up projections.
func phi3LayerRules(hp *decoderHParams) []tensorRule {
	q, kv := hp.heads*hp.headDim, hp.kvHeads*hp.headDim
	return []tensorRule{
		{hf: "input_layernorm.weight", gguf: "attn_norm.weight", shape: []uint64{hp.hidden}},
		{hf: "post_attention_layernorm.weight", gguf: "ffn_norm.weight", shape: []uint64{hp.hidden}},
		{hf: "self_attn.qkv_proj.weight", gguf: "attn_qkv.weight", shape: []uint64{q + 2*kv, hp.hidden}},
		{hf: "self_attn.o_proj.weight", gguf: "attn_output.weight", shape: []uint64{hp.hidden, q}},
		{hf: "mlp.gate_up_proj.weight", gguf: "ffn_up.weight", shape: []uint64{2 * hp.ff, hp.hidden}},
		{hf: "mlp.down_proj.weight", gguf: "ffn_down.weight", shape: []uint64{hp.hidden, hp.ff}},
	}
}

func (p *phi3) Check(b *Builder) error {
	hp, err := readDecoderHParams(b.Config, false)
	if err != nil {
		return err
	}
	if hp.hidden%hp.heads != 0 {
		return b.Config.errf("hidden_size", "%d is not divisible by num_attention_heads %d", hp.hidden, hp.heads)
	}
	// Phi3MiniModel's rotary dimension is hidden/heads whatever head_dim
	// says.
	hp.headDim = hp.hidden / hp.heads
	p.hp = hp
	return p.table().check(b, &p.hp)
}

// ExtraTensors writes the rope scaling attention factor (right after
// general.architecture, as the converter does while generating tensors)
// and the rope_factors_long/short tensors.
func (p *phi3) ExtraTensors(b *Builder) error {
	c := b.Config
	rs, ok, err := c.Object("rope_scaling")
	if err != nil || !ok {
		return err
	}
	maxPos, err := c.RequireUint32("n_positions", "max_position_embeddings")
	if err != nil {
		return err
	}
	orig, err := c.RequireUint32("original_max_position_embeddings")
	if err != nil {
		return err
	}
	scale := float64(maxPos) / float64(orig)
	typ, _ := rs.String("type")
	attn := 1.0
	switch strings.ToLower(typ) {
	case "":
		return rs.errf("type", "missing")
	case "su", "longrope":
		if scale > 1 {
			attn = math.Sqrt(1 + math.Log(scale)/math.Log(float64(orig)))
		}
	case "yarn":
		if scale > 1 {
			attn = 0.1*math.Log(scale) + 1
		}
	default:
		return rs.errf("type", "rope scaling %q is not supported (want longrope, su or yarn)", typ)
	}
	b.Add("phi3.rope.scaling.attn_factor", float32(attn))
	long, err := floatList(rs, "long_factor")
	if err != nil {
		return err
	}
	short, err := floatList(rs, "short_factor")
	if err != nil {
		return err
	}
	if half := int(p.hp.headDim / 2); len(long) != half || len(short) != half {
		return rs.errf("long_factor", "%d long and %d short factors; both must be %d (rotary dimension / 2)", len(long), len(short), half)
	}
	for _, f := range []struct {
		name string
		v    []float32
	}{{"rope_factors_long.weight", long}, {"rope_factors_short.weight", short}} {
		b.addF32Tensor(f.name, f.v)
	}
	return nil
}

// floatList reads a list of numbers as float32 (torch.tensor(…,
// dtype=torch.float32)).
func floatList(c *Config, key string) ([]float32, error) {
	raw, ok := c.Values[key].([]any)
	if !ok {
		return nil, c.errf(key, "missing or not a list")
	}
	out := make([]float32, len(raw))
	for i, v := range raw {
		n, ok := v.(json.Number)
		if !ok {
			return nil, c.errf(key, "entry %d is %s, not a number", i, show(v))
		}
		f, err := n.Float64()
		if err != nil {
			return nil, c.errf(key, "entry %d: %v", i, err)
		}
		out[i] = float32(f)
	}
	return out, nil
}

// Params writes Phi3MiniModel's keys in its order.
func (p *phi3) Params(b *Builder) error {
	const arch = "phi3"
	if err := b.requireParams(arch,
		u32(".context_length", "n_positions", "max_position_embeddings"),
		u32(".rope.scaling.original_context_length", "original_max_position_embeddings"),
		u32(".embedding_length", "hidden_size", "n_embd"),
		u32(".feed_forward_length", "intermediate_size"),
		u32(".block_count", "num_hidden_layers", "n_layer"),
		u32(".attention.head_count", "num_attention_heads", "n_head"),
		u32(".attention.head_count_kv", "num_key_value_heads", "n_head_kv"),
		f32(".attention.layer_norm_rms_epsilon", "rms_norm_eps"),
	); err != nil {
		return err
	}
	b.Add(arch+".rope.dimension_count", uint32(p.hp.headDim))
	if err := b.requireParams(arch, f32(".rope.freq_base", "rope_theta")); err != nil {
		return err
	}
	b.Add("general.file_type", b.FileType)
	// A sliding window of 0 tells Phi-4 apart from other Phi-3 models.
	sw, _, err := b.Config.Uint32("sliding_window")
	if err != nil {
		return err
	}
	b.Add(arch+".attention.sliding_window", sw)
	return nil
}

// Vocab: GPT-2 BPE for Phi-4's GPT2Tokenizer, otherwise SentencePiece with
// Phi-3's own added-token rules, padded to vocab_size.
func (p *phi3) Vocab(b *Builder) error {
	var tc map[string]any
	if _, err := readJSON(b.Dir, "tokenizer_config.json", &tc); err != nil {
		return err
	}
	if cls, _ := tc["tokenizer_class"].(string); cls == "GPT2Tokenizer" {
		if found, err := addBPEVocab(b, int(p.hp.vocab)); err != nil || found {
			return err
		}
		return missingFile(b.Dir, "tokenizer.json")
	}
	v, found, err := sentencePieceVocab(b.Dir, int(p.hp.vocab), b.Warn, true)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s: %w: tokenizer.model is missing", b.Dir, ErrTokenizer)
	}
	return addSentencePieceVocab(b, v)
}
