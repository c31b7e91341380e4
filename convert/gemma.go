package convert

import (
	"encoding/json"
	"strings"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/safetensors"
)

// gemma converts GemmaForCausalLM (GGUF "gemma") and Gemma2ForCausalLM
// (GGUF "gemma2") as convert_hf_to_gguf.py's GemmaModel and Gemma2Model do:
// RMSNorm weights stored as offsets from 1 get 1 added, the embeddings are
// tied (an lm_head in the checkpoint is dropped), head_dim comes from
// config.json (n_head·head_dim need not equal hidden_size). Gemma 2 adds
// norms after attention and around the MLP, soft-capping and a sliding
// window.
type gemma struct {
	decoder
	v2 bool
}

func init() {
	Register(func() Architecture {
		return &gemma{decoder: decoder{arch: "gemma", layer: llamaLayerRules, global: gemmaGlobalRules}}
	}, "GemmaForCausalLM")
	Register(func() Architecture {
		return &gemma{decoder: decoder{arch: "gemma2", layer: gemma2LayerRules, global: gemmaGlobalRules}, v2: true}
	}, "Gemma2ForCausalLM")
}

// gemma2LayerRules is a Llama layer with Gemma 2's four norms.
func gemma2LayerRules(hp *decoderHParams) []tensorRule { return gemma2Norms(llamaLayerRules(hp), hp) }

// gemma2Norms replaces the Llama layer's post-attention norm with Gemma 2's
// four norms (Gemma 3 uses the same names).
func gemma2Norms(layer []tensorRule, hp *decoderHParams) []tensorRule {
	var out []tensorRule
	for _, r := range layer {
		if r.hf != "post_attention_layernorm.weight" {
			out = append(out, r)
		}
	}
	return append(out,
		tensorRule{hf: "post_attention_layernorm.weight", gguf: "post_attention_norm.weight", shape: []uint64{hp.hidden}},
		tensorRule{hf: "pre_feedforward_layernorm.weight", gguf: "ffn_norm.weight", shape: []uint64{hp.hidden}},
		tensorRule{hf: "post_feedforward_layernorm.weight", gguf: "post_ffw_norm.weight", shape: []uint64{hp.hidden}},
	)
}

// gemmaGlobalRules: tied embeddings; an lm_head (as AutoAWQ writes) is
// accepted and dropped.
func gemmaGlobalRules(hp *decoderHParams) []tensorRule {
	g := llamaGlobalRules(hp)
	g[2].optional = true
	return g
}

func (g *gemma) Check(b *Builder) error {
	hp, err := readDecoderHParams(b.Config, true)
	if err != nil {
		return err
	}
	if !b.Config.Has("head_dim") {
		return b.Config.errf("head_dim", "missing (Gemma configs give it)")
	}
	g.hp = hp
	return g.table().check(b, &g.hp)
}

func (g *gemma) MapTensor(b *Builder, t *safetensors.Tensor) error {
	// Gemma's embeddings are always tied, whatever the config says.
	return addDecoderTensor(b, g.table(), true, t, gemmaNormShift(t.Name)...)
}

// gemmaNormShift: every Hugging Face tensor named *norm.weight holds an
// offset from 1.
func gemmaNormShift(hfName string) []formats.Transform {
	if strings.HasSuffix(hfName, "norm.weight") {
		return []formats.Transform{addOne{}}
	}
	return nil
}

// Params writes GemmaModel/Gemma2Model's keys, in their order (not
// Model.set_gguf_parameters').
func (g *gemma) Params(b *Builder) error {
	arch := g.GGUFArch()
	if err := b.requireParams(arch,
		u32(".context_length", "max_position_embeddings"),
		u32(".embedding_length", "hidden_size"),
		u32(".block_count", "num_hidden_layers"),
		u32(".feed_forward_length", "intermediate_size"),
		u32(".attention.head_count", "num_attention_heads"),
		u32(".attention.head_count_kv", "num_key_value_heads", "num_attention_heads"),
		f32(".attention.layer_norm_rms_epsilon", "rms_norm_eps"),
	); err != nil {
		return err
	}
	b.Add(arch+".attention.key_length", uint32(g.hp.headDim))
	b.Add(arch+".attention.value_length", uint32(g.hp.headDim))
	b.Add("general.file_type", b.FileType)
	if !g.v2 {
		return nil
	}
	return b.requireParams(arch,
		f32(".attn_logit_softcapping", "attn_logit_softcapping"),
		f32(".final_logit_softcapping", "final_logit_softcapping"),
		u32(".attention.sliding_window", "sliding_window"),
	)
}

// Vocab is SentencePiece only, without the dummy prefix; Gemma 1 also
// writes CodeGemma's end-of-turn id (107; its prefix/suffix/middle/fsep ids
// have no GGUF key in b4748 and are skipped).
func (g *gemma) Vocab(b *Builder) error {
	if err := sentencePieceOnly(b, int(g.hp.vocab)); err != nil {
		return err
	}
	if !g.v2 {
		types := []string{"prefix", "suffix", "middle", "fsep", "eot"}
		sv, err := loadSpecialVocab(b.Dir, types, -1, false, b.Warn)
		if err != nil {
			return err
		}
		for i, id := range []string{"67", "69", "68", "70", "107"} {
			if err := sv.set(types[i], json.Number(id), b.Warn); err != nil {
				return err
			}
		}
		sv.chat = nil // already written with the vocabulary
		if err := sv.add(b); err != nil {
			return err
		}
	}
	b.Add("tokenizer.ggml.add_space_prefix", false)
	return nil
}

// sentencePieceOnly is _set_vocab_sentencepiece: tokenizer.model is
// required.
func sentencePieceOnly(b *Builder, vocabSize int) error {
	v, found, err := SentencePieceVocab(b.Dir, vocabSize, b.Warn)
	if err != nil {
		return err
	}
	if !found {
		return missingFile(b.Dir, "tokenizer.model")
	}
	return addSentencePieceVocab(b, v)
}
