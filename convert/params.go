package convert

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
)

// addUint32 copies an optional integer hyperparameter (the first of keys
// present) to key as uint32.
func (b *Builder) addUint32(key string, keys ...string) error {
	return b.addFirstPresent(key, keys, func(k string) (any, error) {
		v, _, err := b.Config.Uint32(k)
		return v, err
	})
}

// addFloat32 copies an optional number hyperparameter to key as float32.
func (b *Builder) addFloat32(key string, keys ...string) error {
	return b.addFirstPresent(key, keys, func(k string) (any, error) {
		v, _, err := b.Config.Float(k)
		return float32(v), err
	})
}

// addFirstPresent reads the first of keys present in config.json with read
// and writes the value to key; nothing is written when none is present.
func (b *Builder) addFirstPresent(key string, keys []string, read func(key string) (any, error)) error {
	k, ok := b.Config.Find(keys...)
	if !ok {
		return nil
	}
	v, err := read(k)
	if err != nil {
		return err
	}
	b.Add(key, v)
	return nil
}

// hparam is one GGUF key (after the architecture name) and the config.json
// keys it may be read from, the first present one winning (find_hparam).
type hparam struct {
	key  string
	from []string
}

// addUint32s copies optional integer hyperparameters to ARCH+key, in order.
func (b *Builder) addUint32s(arch string, hps []hparam) error {
	for _, hp := range hps {
		if err := b.addUint32(arch+hp.key, hp.from...); err != nil {
			return err
		}
	}
	return nil
}

// addFloat32s copies optional number hyperparameters to ARCH+key, in order.
func (b *Builder) addFloat32s(arch string, hps []hparam) error {
	for _, hp := range hps {
		if err := b.addFloat32(arch+hp.key, hp.from...); err != nil {
			return err
		}
	}
	return nil
}

// requireUint32s copies integer hyperparameters that must be present and
// positive to ARCH+key, in order.
func (b *Builder) requireUint32s(arch string, hps []hparam) error {
	for _, hp := range hps {
		v, err := b.Config.RequireUint32(hp.from...)
		if err != nil {
			return err
		}
		b.Add(arch+hp.key, v)
	}
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

// addRopeScaling writes a linear or YaRN rope scaling: its type and factor,
// and for YaRN original_max_position_embeddings as the original context
// length. LlamaModel writes that only when present (origOptional); the
// others require it.
func addRopeScaling(b *Builder, rs *Config, arch, typ string, factor float64, origOptional bool) error {
	b.Add(arch+".rope.scaling.type", typ)
	b.Add(arch+".rope.scaling.factor", float32(factor))
	if typ != "yarn" {
		return nil
	}
	const origKey = "original_max_position_embeddings"
	var orig uint32
	var err error
	if origOptional {
		var present bool
		orig, present, err = rs.Uint32(origKey)
		if err == nil && !present {
			return nil
		}
	} else {
		orig, err = rs.RequireUint32(origKey)
	}
	if err != nil {
		return err
	}
	b.Add(arch+".rope.scaling.original_context_length", orig)
	return nil
}

// memSource is a generated F32 tensor.
type memSource struct{ data []byte }

func (m memSource) Type() ggml.Type { return ggml.TypeF32 }

func (m memSource) ReadRaw() ([]byte, error) { return append([]byte(nil), m.data...), nil }

// addF32Tensor adds a generated 1-D F32 tensor (rope factors) to the
// output.
func (b *Builder) addF32Tensor(name string, v []float32) {
	b.Model.Tensors = append(b.Model.Tensors, &formats.Tensor{
		Name: name, Shape: []uint64{uint64(len(v))}, Type: ggml.TypeF32, Source: f32Source(v),
	})
}

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
