package eval

// Qwen3 (newer than b4748; current llama.cpp's src/models/qwen3.cpp): Llama's
// block with an RMS norm over each query and key head (attn_q_norm,
// attn_k_norm, [head_dim]) before RoPE, NEOX RoPE, no biases. Its head_dim
// is explicit (attention.key_length), so n_head·head_dim may differ from
// n_embd. Small models tie the output to the embeddings (no output.weight).
func loadQwen3(m *Model) error {
	m.style.neox = true
	return m.loadLayers(func(i int, l *Layer) error {
		if err := m.loadAttention(i, l); err != nil {
			return err
		}
		if err := m.loadQKNorms(i, l); err != nil {
			return err
		}
		return m.loadFFN(i, l)
	})
}
