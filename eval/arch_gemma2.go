package eval

import (
	"fmt"
	"math"
)

// Gemma 2 (llama.cpp's build_gemma2): Gemma's block with norms of the
// attention and feed-forward outputs, attention scores and logits
// soft-capped (cap·tanh(x/cap)), and a sliding window on even layers.
// b4748 scales queries by 1/√head_dim for the 26- and 42-layer models (2B,
// 9B) and by 1/√(n_embd/n_head) for the 46-layer 27B; other layer counts are
// not models it loads.
func loadGemma2(m *Model) error {
	h := m.Hparams
	gemmaStyle(m)
	switch h.NLayer {
	case 26, 42:
	case 46:
		m.style.queryScale = 1 / float32(math.Sqrt(float64(h.NEmbd/h.NHead)))
	default:
		return fmt.Errorf("%s.block_count = %d: llama.cpp knows Gemma 2 with 26, 42 or 46 layers only (its query scale depends on it)", h.Arch, h.NLayer)
	}
	m.style.attnSoftcap = m.archFloat("attn_logit_softcapping", 50)
	m.style.finalSoftcap = m.archFloat("final_logit_softcapping", 30)
	if !(m.style.attnSoftcap > 0) || !(m.style.finalSoftcap > 0) {
		return fmt.Errorf("%s soft-capping values %g and %g must be positive", h.Arch, m.style.attnSoftcap, m.style.finalSoftcap)
	}
	window, err := m.archInt("attention.sliding_window", 4096)
	if err != nil {
		return err
	}
	return m.loadLayers(func(i int, l *Layer) error {
		if i%2 == 0 {
			l.Window = window
		}
		if err := m.loadAttention(i, l); err != nil {
			return err
		}
		if err := m.loadPostNorms(i, l); err != nil {
			return err
		}
		return m.loadFFN(i, l)
	})
}
