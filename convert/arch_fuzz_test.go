package convert

import (
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/safetensors"
)

// FuzzArchConfig feeds arbitrary config.json contents to every registered
// architecture's config reading (Check without tensors, as --vocab-only
// does) and its metadata writer: each must return an error or keys, never
// panic.
func FuzzArchConfig(f *testing.F) {
	for _, s := range []string{
		`{"architectures":["Qwen2ForCausalLM"],"hidden_size":64,"intermediate_size":256,"num_attention_heads":4,"num_key_value_heads":2,"num_hidden_layers":2,"vocab_size":4096,"rope_scaling":{"type":"yarn","factor":4,"original_max_position_embeddings":32}}`,
		`{"architectures":["MixtralForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"num_hidden_layers":2,"vocab_size":10,"num_local_experts":4,"num_experts_per_tok":9}`,
		`{"architectures":["GemmaForCausalLM"],"hidden_size":64,"intermediate_size":256,"num_attention_heads":4,"num_hidden_layers":2,"vocab_size":10,"head_dim":64,"max_position_embeddings":8,"rms_norm_eps":1e-6}`,
		`{"architectures":["Gemma2ForCausalLM"],"hidden_size":32,"intermediate_size":128,"num_attention_heads":4,"num_hidden_layers":26,"vocab_size":10,"head_dim":16,"attn_logit_softcapping":50,"final_logit_softcapping":"x","sliding_window":64}`,
		`{"architectures":["Phi3ForCausalLM"],"hidden_size":64,"intermediate_size":256,"num_attention_heads":4,"num_hidden_layers":2,"vocab_size":10,"max_position_embeddings":2048,"original_max_position_embeddings":64,"rope_scaling":{"type":"longrope","long_factor":[1,2],"short_factor":[1]}}`,
		`{"architectures":["Qwen3ForCausalLM"],"hidden_size":64,"intermediate_size":256,"num_attention_heads":4,"num_hidden_layers":2,"vocab_size":10,"head_dim":32}`,
		`{"architectures":["Gemma3ForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"num_hidden_layers":14,"vocab_size":10,"sliding_window_pattern":1,"rope_scaling":{"rope_type":"linear","factor":8},"rope_local_base_freq":10000}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, "config.json")
		if err != nil {
			return
		}
		_, arch, err := lookup(cfg)
		if err != nil {
			return
		}
		ck, _ := safetensors.NewCheckpoint(t.TempDir(), nil)
		b := &Builder{Dir: t.TempDir(), Config: cfg, Checkpoint: ck, Model: &formats.Model{}, VocabOnly: true}
		if err := arch.Check(b); err != nil {
			return
		}
		if err := arch.Params(b); err != nil {
			return
		}
		if len(b.Model.KV) == 0 {
			t.Fatal("no metadata written")
		}
	})
}
