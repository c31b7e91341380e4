package eval

// Qwen2 (llama.cpp's build_qwen2): Llama's block with biases on the query,
// key and value projections (none on the output projection) and NEOX RoPE.
func loadQwen2(m *Model) error {
	h := m.Hparams
	m.style.neox = true
	return m.loadLayers(func(i int, l *Layer) error {
		if err := m.loadAttention(i, l); err != nil {
			return err
		}
		var err error
		if l.Bq, err = m.vector(blockBias(i, "attn_q"), h.NHead*h.HeadDimK); err != nil {
			return err
		}
		if l.Bk, err = m.vector(blockBias(i, "attn_k"), h.NHeadKV*h.HeadDimK); err != nil {
			return err
		}
		if l.Bv, err = m.vector(blockBias(i, "attn_v"), h.NHeadKV*h.HeadDimV); err != nil {
			return err
		}
		return m.loadFFN(i, l)
	})
}
