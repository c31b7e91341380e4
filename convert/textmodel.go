package convert

// textModelParams writes the hyperparameters of current llama.cpp's
// TextModel.set_gguf_parameters (newer than b4748; used for the
// architectures b4748 does not know, qwen3 and gemma3), in its order:
// counts, rope scaling of the full-attention layers (linear or yarn), the
// rope bases (global, then sliding-window layers' rope_local_base_freq),
// norm epsilons, experts, head_dim as key/value length, file type.
func textModelParams(b *Builder, arch string) error {
	c := b.Config
	n, err := b.BlockCount()
	if err != nil {
		return err
	}
	b.Add(arch+".block_count", n)
	if err := b.addParams(arch,
		u32(".context_length", "max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"),
		u32(".embedding_length", "hidden_size", "n_embd", "dim"),
		u32(".feed_forward_length", "intermediate_size", "n_inner", "hidden_dim"),
		u32(".attention.head_count", "num_attention_heads", "n_head", "n_heads"),
		u32(".attention.head_count_kv", "num_key_value_heads", "n_kv_heads"),
	); err != nil {
		return err
	}
	if rs, ok, err := c.Object("rope_scaling"); err != nil {
		return err
	} else if ok {
		typ := rs.FirstString("rope_type", "type")
		factor, hasFactor, err := rs.Float("factor")
		if err != nil {
			return err
		}
		if (typ == "linear" || typ == "yarn") && hasFactor {
			if err := addRopeScaling(b, rs, arch, typ, factor, false); err != nil {
				return err
			}
		}
	}
	if err := b.addParams(arch,
		f32(".rope.freq_base", "rope_theta"),
		f32(".rope.freq_base_swa", "rope_local_base_freq"),
		f32(".attention.layer_norm_rms_epsilon", "rms_norm_eps", "norm_eps"),
		f32(".attention.layer_norm_epsilon", "layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"),
		u32(".expert_count", "num_local_experts", "num_experts", "n_routed_experts"),
		u32(".expert_used_count", "num_experts_per_tok", "num_experts_per_token", "top_k_experts"),
	); err != nil {
		return err
	}
	return b.addHeadDimAndFileType(arch)
}
