package eval

import "fmt"

// Llama (llama.cpp's llm_build_llama): the GGUF architecture "llama" covers
// Llama 1 to 3, Mistral and Mixtral. The block is the shared one with no
// switches set: adjacent-pair RoPE, scores scaled by 1/√head_dim, SwiGLU.
// Llama 3's long-context scaling comes as a rope_freqs tensor of per-pair
// divisors; Mixtral replaces the dense feed-forward of every layer with
// experts (expert_count > 0).
func loadLlama(m *Model) error {
	h := m.Hparams
	if m.hasTensor("rope_freqs.weight") {
		freqs, err := m.vector("rope_freqs.weight", h.NRot/2)
		if err != nil {
			return err
		}
		m.ropes[0].freqs = freqs
	}
	nExpert, err := m.archInt("expert_count", 0)
	if err != nil {
		return err
	}
	nUsed, err := m.archInt("expert_used_count", 0)
	if err != nil {
		return err
	}
	if nExpert > 0 && (nUsed <= 0 || nUsed > nExpert) {
		return fmt.Errorf("%s.expert_used_count = %d, must be 1 to expert_count %d", h.Arch, nUsed, nExpert)
	}
	return m.loadLayers(func(i int, l *Layer) error {
		if err := m.loadAttention(i, l); err != nil {
			return err
		}
		if nExpert == 0 {
			return m.loadFFN(i, l)
		}
		var err error
		if l.FFNNorm, err = m.vector(blockName(i, "ffn_norm"), h.NEmbd); err != nil {
			return err
		}
		l.Experts, err = m.loadExperts(i, nExpert, nUsed)
		return err
	})
}

// loadExperts reads layer i's router and expert stacks: ffn_gate_inp
// [n_embd, n_expert] and ffn_{gate,up,down}_exps, each n_expert matrices
// stacked along the third dimension, used one view per expert.
func (m *Model) loadExperts(i, nExpert, nUsed int) (*Experts, error) {
	h := m.Hparams
	router, err := m.matrix(blockName(i, "ffn_gate_inp"), h.NEmbd, nExpert)
	if err != nil {
		return nil, err
	}
	e := &Experts{Router: router, NUsed: nUsed}
	for _, s := range []struct {
		dst        *[]*Weight
		n          string
		cols, rows int
	}{
		{&e.Gate, "ffn_gate_exps", h.NEmbd, h.NFF},
		{&e.Up, "ffn_up_exps", h.NEmbd, h.NFF},
		{&e.Down, "ffn_down_exps", h.NFF, h.NEmbd},
	} {
		stack, err := m.stack(blockName(i, s.n), s.cols, s.rows, nExpert)
		if err != nil {
			return nil, err
		}
		for x := range nExpert {
			*s.dst = append(*s.dst, stack.rows(fmt.Sprintf("[%d]", x), x*s.rows, s.rows))
		}
	}
	return e, nil
}

// stack finds a 3-D weight of shape [cols, rows, n] and returns it as one
// matrix of n·rows rows (the n matrices one after the other).
func (m *Model) stack(name string, cols, rows, n int) (*Weight, error) {
	ti, ok := m.File.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("missing tensor %s", name)
	}
	if len(ti.Shape) != 3 || ti.Shape[0] != uint64(cols) || ti.Shape[1] != uint64(rows) || ti.Shape[2] != uint64(n) {
		return nil, fmt.Errorf("tensor %s has shape %v, hyperparameters need [%d %d %d]", name, ti.Shape, cols, rows, n)
	}
	if !matmulSupported(ti.Type) {
		return nil, fmt.Errorf("tensor %s: type %s is not supported by the engine", name, ti.Type)
	}
	data, err := m.File.Data(ti)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	return &Weight{Name: name, Type: ti.Type, Data: data, Rows: rows * n, Cols: cols}, nil
}
