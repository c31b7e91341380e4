package convert

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/llqt/llqt/formats/safetensors"
)

// mixtral converts MixtralForCausalLM to GGUF architecture "llama" with
// experts, as LlamaModel does: each layer's experts.E.w1/w2/w3 are stacked
// into 3-D ffn_gate_exps/ffn_down_exps/ffn_up_exps tensors (expert-major),
// emitted when the layer's last expert tensor is seen; the router
// (block_sparse_moe.gate, GGUF ffn_gate_inp) stays F32.
//
// The stacked tensors are lazy: their source lists the experts' slices, so
// nothing is read until the writer materialises them.
type mixtral struct {
	llama
	// pending holds each layer's expert tensors until all have been seen.
	pending map[string]map[string]*safetensors.Tensor
}

func init() {
	Register(func() Architecture { return &mixtral{llama: llama{llamaDecoder()}} }, "MixtralForCausalLM")
}

var expertRE = regexp.MustCompile(`^block_sparse_moe\.experts\.(\d+)\.(w[123])\.weight$`)

// expertNames are the stacked tensors in the order LlamaModel emits them.
var expertNames = []struct{ w, gguf string }{
	{"w1", "ffn_gate_exps.weight"}, {"w2", "ffn_down_exps.weight"}, {"w3", "ffn_up_exps.weight"},
}

func (m *mixtral) table() *tensorTable {
	hp := &m.hp
	tt := m.llama.table()
	tt.layer = append(tt.layer, tensorRule{hf: "block_sparse_moe.gate.weight", gguf: "ffn_gate_inp.weight", shape: []uint64{hp.experts, hp.hidden}})
	tt.extra = func(suffix string) ([]uint64, bool) {
		e := expertRE.FindStringSubmatch(suffix)
		if e == nil {
			return nil, false
		}
		if x, err := strconv.ParseUint(e[1], 10, 32); err != nil || x >= hp.experts {
			return []uint64{}, true // a shape no tensor has: reported as a mismatch
		}
		if e[2] == "w2" {
			return []uint64{hp.hidden, hp.ff}, true
		}
		return []uint64{hp.ff, hp.hidden}, true
	}
	return tt
}

func (m *mixtral) Check(b *Builder) error {
	hp, err := readDecoderHParams(b.Config, false)
	if err != nil {
		return err
	}
	m.hp = hp
	if m.hp.experts == 0 {
		return b.Config.errf("num_local_experts", "missing (MixtralForCausalLM needs experts)")
	}
	m.pending = map[string]map[string]*safetensors.Tensor{}
	if err := m.table().check(b, &m.hp); err != nil || b.VocabOnly {
		return err
	}
	for l := uint64(0); l < m.hp.blocks; l++ {
		for x := uint64(0); x < m.hp.experts; x++ {
			for _, w := range expertNames {
				name := fmt.Sprintf("model.layers.%d.block_sparse_moe.experts.%d.%s.weight", l, x, w.w)
				if _, ok := b.Checkpoint.Tensor(name); !ok {
					return fmt.Errorf("%s: %w: tensor %s is missing from the checkpoint (config.json: %d layers, %d experts)",
						b.Dir, ErrConfig, name, m.hp.blocks, m.hp.experts)
				}
			}
		}
	}
	return nil
}

func (m *mixtral) MapTensor(b *Builder, t *safetensors.Tensor) error {
	lm := layerRE.FindStringSubmatch(t.Name)
	if lm == nil || !expertRE.MatchString(lm[2]) {
		return addDecoderTensor(b, m.table(), m.hp.tied, t, llamaPermutes(t.Name, &m.hp)...)
	}
	if err := checkDType(t); err != nil {
		return err
	}
	layer := lm[1]
	if m.pending[layer] == nil {
		m.pending[layer] = map[string]*safetensors.Tensor{}
	}
	m.pending[layer][lm[2]] = t
	if uint64(len(m.pending[layer])) < 3*m.hp.experts {
		return nil
	}
	experts := m.pending[layer]
	delete(m.pending, layer)
	for _, w := range expertNames {
		stack := &stackSource{}
		var shape []uint64
		for x := uint64(0); x < m.hp.experts; x++ {
			e := experts[fmt.Sprintf("block_sparse_moe.experts.%d.%s.weight", x, w.w)]
			if x == 0 {
				stack.typ = e.Type()
				shape = append([]uint64{m.hp.experts}, e.Shape...)
			} else if e.Type() != stack.typ {
				return fmt.Errorf("%s: tensor %s has dtype %s but expert 0 has %s; experts must share a dtype to be stacked",
					e.File.Path, e.Name, e.DType, stack.typ)
			}
			stack.parts = append(stack.parts, e)
		}
		if err := b.AddSource("blk."+layer+"."+w.gguf, shape, stack); err != nil {
			return err
		}
	}
	return nil
}
