package convert

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/llqt/llqt/formats/ggml"
)

// addUint32 copies an optional integer hyperparameter (the first of keys
// present) to key as uint32.
func (b *Builder) addUint32(key string, keys ...string) error {
	k, ok := b.Config.Find(keys...)
	if !ok {
		return nil
	}
	v, _, err := b.Config.Uint32(k)
	if err != nil {
		return err
	}
	b.Add(key, v)
	return nil
}

// addFloat32 copies an optional number hyperparameter to key as float32.
func (b *Builder) addFloat32(key string, keys ...string) error {
	k, ok := b.Config.Find(keys...)
	if !ok {
		return nil
	}
	v, _, err := b.Config.Float(k)
	if err != nil {
		return err
	}
	b.Add(key, float32(v))
	return nil
}

// BlockCount is the number of layers (find_hparam's keys).
func (b *Builder) BlockCount() (uint32, error) {
	return b.Config.RequireUint32("n_layers", "num_hidden_layers", "n_layer", "num_layers")
}

// CommonParams writes the hyperparameters every architecture shares
// (convert_hf_to_gguf.py's Model.set_gguf_parameters), ending with
// general.file_type.
func (b *Builder) CommonParams(arch string) error {
	n, err := b.BlockCount()
	if err != nil {
		return err
	}
	b.Add(arch+".block_count", n)
	steps := []struct {
		float bool
		key   string
		from  []string
	}{
		{false, ".context_length", []string{"max_position_embeddings", "n_ctx"}},
		{false, ".embedding_length", []string{"hidden_size", "n_embd"}},
		{false, ".feed_forward_length", []string{"intermediate_size", "n_inner"}},
		{false, ".attention.head_count", []string{"num_attention_heads", "n_head"}},
		{false, ".attention.head_count_kv", []string{"num_key_value_heads"}},
		{true, ".rope.freq_base", []string{"rope_theta"}},
		{true, ".attention.layer_norm_rms_epsilon", []string{"rms_norm_eps"}},
		{true, ".attention.layer_norm_epsilon", []string{"layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"}},
		{false, ".expert_count", []string{"num_local_experts"}},
		{false, ".expert_used_count", []string{"num_experts_per_tok"}},
		{false, ".attention.key_length", []string{"head_dim"}},
		{false, ".attention.value_length", []string{"head_dim"}},
	}
	for _, s := range steps {
		if s.float {
			err = b.addFloat32(arch+s.key, s.from...)
		} else {
			err = b.addUint32(arch+s.key, s.from...)
		}
		if err != nil {
			return err
		}
	}
	b.Add("general.file_type", b.FileType)
	return nil
}

// memSource is a generated F32 tensor.
type memSource struct{ data []byte }

func (m memSource) Type() ggml.Type { return ggml.TypeF32 }

func (m memSource) ReadRaw() ([]byte, error) { return append([]byte(nil), m.data...), nil }

func f32Source(v []float32) memSource {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return memSource{out}
}

// llama3RopeFactors computes the per-frequency scaling factors Llama 3.1
// uses (convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors), in
// float32 where torch computes in float32.
func llama3RopeFactors(base float64, dim int, factor, lowFreqFactor, highFreqFactor, oldContext float64) ([]float32, error) {
	lowWavelen := oldContext / lowFreqFactor
	highWavelen := oldContext / highFreqFactor
	if lowWavelen == highWavelen {
		return nil, fmt.Errorf("llama3 rope scaling: low_freq_factor equals high_freq_factor")
	}
	// torch compares a float32 tensor with a Python float in float32, and
	// evaluates scalar/tensor as reciprocal(tensor)*scalar.
	low32, high32 := float32(lowWavelen), float32(highWavelen)
	var out []float32
	for i := 0; i < dim; i += 2 {
		exp := float32(i) / float32(dim)
		freq := 1 / float32(math.Pow(base, float64(exp)))
		wavelen := (1 / freq) * float32(2*math.Pi)
		switch {
		case wavelen < high32:
			out = append(out, 1)
		case wavelen > low32:
			out = append(out, float32(factor))
		default:
			smooth := ((1/wavelen)*float32(oldContext) - float32(lowFreqFactor)) / float32(highFreqFactor-lowFreqFactor)
			out = append(out, 1/((1-smooth)/float32(factor)+smooth))
		}
	}
	return out, nil
}
