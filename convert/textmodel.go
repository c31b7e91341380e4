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
	if err := b.addUint32s(arch, []hparam{
		{".context_length", []string{"max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"}},
		{".embedding_length", []string{"hidden_size", "n_embd", "dim"}},
		{".feed_forward_length", []string{"intermediate_size", "n_inner", "hidden_dim"}},
		{".attention.head_count", []string{"num_attention_heads", "n_head", "n_heads"}},
		{".attention.head_count_kv", []string{"num_key_value_heads", "n_kv_heads"}},
	}); err != nil {
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
	if err := b.addFloat32(arch+".rope.freq_base", "rope_theta"); err != nil {
		return err
	}
	if err := b.addFloat32(arch+".rope.freq_base_swa", "rope_local_base_freq"); err != nil {
		return err
	}
	if err := b.addFloat32s(arch, []hparam{
		{".attention.layer_norm_rms_epsilon", []string{"rms_norm_eps", "norm_eps"}},
		{".attention.layer_norm_epsilon", []string{"layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"}},
	}); err != nil {
		return err
	}
	if err := b.addUint32(arch+".expert_count", "num_local_experts", "num_experts", "n_routed_experts"); err != nil {
		return err
	}
	if err := b.addUint32(arch+".expert_used_count", "num_experts_per_tok", "num_experts_per_token", "top_k_experts"); err != nil {
		return err
	}
	if err := b.addUint32(arch+".attention.key_length", "head_dim"); err != nil {
		return err
	}
	if err := b.addUint32(arch+".attention.value_length", "head_dim"); err != nil {
		return err
	}
	b.Add("general.file_type", b.FileType)
	return nil
}
