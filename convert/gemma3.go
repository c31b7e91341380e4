package convert

import (
	"fmt"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/safetensors"
)

// gemma3 converts the text model Gemma3ForCausalLM to GGUF architecture
// "gemma3". b4748 does not know it; names and keys follow current
// llama.cpp's Gemma3Model: Gemma 2's four norms plus q/k norms, every
// *norm.weight shifted by +1, tied embeddings cut to the tokenizer's size,
// TextModel's keys (the global rope base and linear scaling, the local base
// as rope.freq_base_swa) with Gemma 3's defaults written over them in place,
// then final soft-capping (when set) and the sliding window (unless the
// pattern is 1). Nothing is written for query_pre_attn_scalar or the layer
// pattern: llama.cpp derives them.
type gemma3 struct {
	decoder
	// nTokens is the vocabulary size (rows of token_embd kept).
	nTokens int
}

func init() {
	Register(func() Architecture {
		return &gemma3{decoder: decoder{arch: "gemma3", layer: gemma3LayerRules, global: gemmaGlobalRules}}
	}, "Gemma3ForCausalLM")
}

// gemma3LayerRules is Gemma 2's layer with q/k norms.
func gemma3LayerRules(hp *decoderHParams) []tensorRule {
	return append(gemma2LayerRules(hp), qkNormRules(hp)...)
}

func (g *gemma3) Check(b *Builder) error {
	hp, err := readDecoderHParams(b.Config, true)
	if err != nil {
		return err
	}
	if !b.Config.Has("head_dim") {
		hp.headDim = 256 // Gemma3TextConfig's default
	}
	if soft, ok, err := b.Config.Float("attn_logit_softcapping"); err != nil {
		return err
	} else if ok {
		return b.Config.errf("attn_logit_softcapping", "%g: Gemma 3 has no attention soft-capping (want null)", soft)
	}
	g.hp = hp
	if err := g.table().check(b, &g.hp); err != nil {
		return err
	}
	// token_embd keeps one row per token of the tokenizer.
	g.nTokens = int(hp.vocab)
	if v, found, err := SentencePieceVocab(b.Dir, int(hp.vocab), func(string, ...any) {}); err != nil {
		return err
	} else if found {
		g.nTokens = len(v.Tokens)
	}
	return nil
}

func (g *gemma3) MapTensor(b *Builder, t *safetensors.Tensor) error {
	if t.Name == "model.embed_tokens.weight" && uint64(g.nTokens) < t.Shape[0] {
		return g.addCutEmbeddings(b, t)
	}
	// Gemma's embeddings are always tied, whatever the config says.
	return addDecoderTensor(b, g.table(), true, t, gemmaNormShift(t.Name)...)
}

// addCutEmbeddings adds token_embd with the rows past the tokenizer's
// vocabulary left out.
func (g *gemma3) addCutEmbeddings(b *Builder, t *safetensors.Tensor) error {
	name, err := g.table().ggufName(t)
	if err != nil {
		return err
	}
	if err := checkDType(t); err != nil {
		return err
	}
	rowBytes := int(t.Shape[1]) * t.DType.Size()
	src := &prefixSource{src: t, n: g.nTokens * rowBytes}
	return b.AddSource(name, []uint64{uint64(g.nTokens), t.Shape[1]}, src)
}

// prefixSource keeps the first n bytes of a source (leading rows).
type prefixSource struct {
	src formats.Source
	n   int
}

func (p *prefixSource) Type() ggml.Type { return p.src.Type() }

func (p *prefixSource) ReadRaw() ([]byte, error) {
	raw, err := p.src.ReadRaw()
	if err != nil {
		return nil, err
	}
	if len(raw) < p.n {
		return nil, fmt.Errorf("source has %d bytes, want at least %d", len(raw), p.n)
	}
	return raw[:p.n:p.n], nil
}

func (g *gemma3) Params(b *Builder) error {
	const arch = "gemma3"
	if err := textModelParams(b, arch); err != nil {
		return err
	}
	c := b.Config
	if err := b.setUint32Or(arch+".context_length", "max_position_embeddings", 131072); err != nil {
		return err
	}
	if err := b.setUint32Or(arch+".attention.head_count", "num_attention_heads", 8); err != nil {
		return err
	}
	if err := b.setFloat32Or(arch+".attention.layer_norm_rms_epsilon", "rms_norm_eps", 1e-6); err != nil {
		return err
	}
	b.Set(arch+".attention.key_length", uint32(g.hp.headDim))
	b.Set(arch+".attention.value_length", uint32(g.hp.headDim))
	if err := b.setFloat32Or(arch+".rope.freq_base", "rope_theta", 1e6); err != nil {
		return err
	}
	if soft, ok, err := c.Float("final_logit_softcapping"); err != nil {
		return err
	} else if ok && soft != 0 {
		b.Set(arch+".final_logit_softcapping", float32(soft))
	}
	if pat, ok, err := c.Int("sliding_window_pattern"); err != nil {
		return err
	} else if !ok || pat != 1 {
		sw, err := c.RequireUint32("sliding_window")
		if err != nil {
			return err
		}
		b.Set(arch+".attention.sliding_window", sw)
	}
	return b.setUint32Or(arch+".attention.head_count_kv", "num_key_value_heads", 4)
}

// Vocab: SentencePiece without the dummy prefix when tokenizer.model
// exists, else GPT-2 BPE.
func (g *gemma3) Vocab(b *Builder) error {
	v, found, err := SentencePieceVocab(b.Dir, int(g.hp.vocab), b.Warn)
	if err != nil {
		return err
	}
	if !found {
		return sentencePieceOrBPE(b, int(g.hp.vocab))
	}
	if err := addSentencePieceVocab(b, v); err != nil {
		return err
	}
	b.Add("tokenizer.ggml.add_space_prefix", false)
	return nil
}
