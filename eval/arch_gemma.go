package eval

import "math"

// Gemma (llama.cpp's build_gemma): embeddings scaled by √n_embd, NEOX RoPE,
// queries scaled by 1/√head_dim before attention, GELU-gated feed-forward,
// tied output. Heads need not tile n_embd (n_head·head_dim ≠ n_embd), and
// Gemma 1 2B has one KV head; the shared block handles both. The converter
// already stored the norms as 1 + w.
func loadGemma(m *Model) error {
	gemmaStyle(m)
	return m.loadLayers(func(i int, l *Layer) error {
		if err := m.loadAttention(i, l); err != nil {
			return err
		}
		return m.loadFFN(i, l)
	})
}

// gemmaStyle sets the switches every Gemma generation shares.
func gemmaStyle(m *Model) {
	h := m.Hparams
	m.style.neox = true
	m.style.gelu = true
	m.style.embedScale = float32(math.Sqrt(float64(h.NEmbd)))
	m.style.queryScale = 1 / float32(math.Sqrt(float64(h.HeadDimK)))
}
