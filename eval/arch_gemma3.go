package eval

import "fmt"

// Gemma 3 (newer than b4748; current llama.cpp's load_hparams and
// src/models/gemma3.cpp): Gemma 2's block without attention soft-capping
// and with q/k RMS norms per head before RoPE. Five of every six layers
// (il % 6 < 5) are local: a sliding window (attention.sliding_window) and
// RoPE with base rope.freq_base_swa (default 10000) and no scaling; the
// global layers attend everywhere, with base rope.freq_base and the file's
// linear scaling. Queries are scaled by 1/√head_dim (1/√(n_embd/n_head) for
// the 62-layer 27B) before attention; final soft-capping only when the file
// has the key.
func loadGemma3(m *Model) error {
	h := m.Hparams
	gemmaStyle(m)
	if h.NLayer == 62 {
		m.style.queryScale = 1 / sqrtf(float32(h.NEmbd/h.NHead))
	}
	m.style.finalSoftcap = m.archFloat("final_logit_softcapping", 0)
	if m.style.finalSoftcap < 0 {
		return fmt.Errorf("%s.final_logit_softcapping = %g, must be positive", h.Arch, m.style.finalSoftcap)
	}
	window, err := m.archInt("attention.sliding_window", 0)
	if err != nil {
		return err
	}
	pattern, err := m.archInt("attention.sliding_window_pattern", 6)
	if err != nil {
		return err
	}
	// Variant 0 (the file's RoPE) serves the global layers; variant 1 the
	// local ones.
	local := len(m.ropes)
	m.ropes = append(m.ropes, ropeParams{base: m.archFloat("rope.freq_base_swa", 10000), scale: 1})
	return m.loadLayers(func(i int, l *Layer) error {
		if window > 0 && pattern > 0 && i%pattern < pattern-1 {
			l.Window, l.Rope = window, local
		}
		if err := m.loadAttention(i, l); err != nil {
			return err
		}
		if err := m.loadQKNorms(i, l); err != nil {
			return err
		}
		if err := m.loadPostNorms(i, l); err != nil {
			return err
		}
		return m.loadFFN(i, l)
	})
}
