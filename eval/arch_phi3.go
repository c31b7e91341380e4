package eval

// Phi-3 (llama.cpp's build_phi3): Llama's block with fused tensors,
// attn_qkv (Q, K and V rows one after the other) and ffn_up (the gate's rows
// then the up projection's), used here as row views of one matrix; NEOX
// RoPE; queries scaled by 1/√head_dim before attention; a sliding window on
// every layer (attention.sliding_window; b4748 refuses a file without one
// unless it knows the model's default). LongRoPE models (Phi-3 128k) carry
// rope_factors_long and rope_factors_short: the long ones when the context
// exceeds rope.scaling.original_context_length, the short ones otherwise,
// with the cos/sin scaled by rope.scaling.attn_factor (read for every
// architecture, Hparams.RopeAttnFactor).
func loadPhi3(m *Model) error {
	h := m.Hparams
	m.style.neox = true
	m.style.queryScale = 1 / sqrtf(float32(h.HeadDimK))
	window, err := m.archInt("attention.sliding_window", 0)
	if err != nil {
		return err
	}
	short, err := m.optVector("rope_factors_short.weight", h.NRot/2)
	if err != nil {
		return err
	}
	long, err := m.optVector("rope_factors_long.weight", h.NRot/2)
	if err != nil {
		return err
	}
	if short != nil || long != nil {
		if short == nil {
			short = long
		}
		if long == nil {
			long = short
		}
		m.ropes[0].freqs, m.ropes[0].long = short, long
	}
	qDim, kDim, vDim := h.NHead*h.HeadDimK, h.NHeadKV*h.HeadDimK, h.NHeadKV*h.HeadDimV
	return m.loadLayers(func(i int, l *Layer) error {
		l.Window = window
		if m.hasTensor(blockName(i, "attn_qkv")) {
			var err error
			if l.AttnNorm, err = m.vector(blockName(i, "attn_norm"), h.NEmbd); err != nil {
				return err
			}
			qkv, err := m.matrix(blockName(i, "attn_qkv"), h.NEmbd, qDim+kDim+vDim)
			if err != nil {
				return err
			}
			l.Wq, l.Wk, l.Wv = qkv.rows("[q]", 0, qDim), qkv.rows("[k]", qDim, kDim), qkv.rows("[v]", qDim+kDim, vDim)
			if l.Wo, err = m.matrix(blockName(i, "attn_output"), h.NHead*h.HeadDimV, h.NEmbd); err != nil {
				return err
			}
		} else if err := m.loadAttention(i, l); err != nil {
			return err
		}
		var err error
		if l.FFNNorm, err = m.vector(blockName(i, "ffn_norm"), h.NEmbd); err != nil {
			return err
		}
		up, err := m.matrix(blockName(i, "ffn_up"), h.NEmbd, 2*h.NFF)
		if err != nil {
			return err
		}
		l.WGate, l.WUp = up.rows("[gate]", 0, h.NFF), up.rows("[up]", h.NFF, h.NFF)
		l.WDown, err = m.matrix(blockName(i, "ffn_down"), h.NFF, h.NEmbd)
		return err
	})
}
