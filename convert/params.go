package convert

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

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

// hparam is one GGUF key (after the architecture name), the config.json
// keys it may be read from, the first present one winning (find_hparam),
// and whether it is written as float32 rather than uint32.
type hparam struct {
	key   string
	from  []string
	float bool
}

// u32 and f32 are the hparams of a uint32 and of a float32 key.
func u32(key string, from ...string) hparam { return hparam{key: key, from: from} }
func f32(key string, from ...string) hparam { return hparam{key: key, from: from, float: true} }

// addParams copies optional hyperparameters to ARCH+key, in order; a key
// none of whose sources is present is left out.
func (b *Builder) addParams(arch string, hps ...hparam) error {
	for _, hp := range hps {
		add := b.addUint32
		if hp.float {
			add = b.addFloat32
		}
		if err := add(arch+hp.key, hp.from...); err != nil {
			return err
		}
	}
	return nil
}

// requireParams copies hyperparameters that must be present to ARCH+key,
// in order; integers must also be positive.
func (b *Builder) requireParams(arch string, hps ...hparam) error {
	for _, hp := range hps {
		var v any
		var err error
		if hp.float {
			v, err = b.requireFloat32(hp.from...)
		} else {
			v, err = b.Config.RequireUint32(hp.from...)
		}
		if err != nil {
			return err
		}
		b.Add(arch+hp.key, v)
	}
	return nil
}

// requireFloat32 reads a number hyperparameter that must be present.
func (b *Builder) requireFloat32(keys ...string) (float32, error) {
	k, ok := b.Config.Find(keys...)
	if !ok {
		return 0, b.Config.errf(strings.Join(keys, "/"), "missing")
	}
	v, _, err := b.Config.Float(k)
	return float32(v), err
}

// setUint32Or and setFloat32Or write key from config.json's from, or def
// when the config leaves it out, in place of any value already written
// (an architecture's own defaults over TextModel's keys).
func (b *Builder) setUint32Or(key, from string, def uint32) error {
	v, err := b.Config.Uint32Or(from, def)
	if err == nil {
		b.Set(key, v)
	}
	return err
}

func (b *Builder) setFloat32Or(key, from string, def float64) error {
	v, err := b.Config.FloatOr(from, def)
	if err == nil {
		b.Set(key, float32(v))
	}
	return err
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
	if err := b.addParams(arch,
		u32(".context_length", "max_position_embeddings", "n_ctx"),
		u32(".embedding_length", "hidden_size", "n_embd"),
		u32(".feed_forward_length", "intermediate_size", "n_inner"),
		u32(".attention.head_count", "num_attention_heads", "n_head"),
		u32(".attention.head_count_kv", "num_key_value_heads"),
		f32(".rope.freq_base", "rope_theta"),
		f32(".attention.layer_norm_rms_epsilon", "rms_norm_eps"),
		f32(".attention.layer_norm_epsilon", "layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"),
		u32(".expert_count", "num_local_experts"),
		u32(".expert_used_count", "num_experts_per_tok"),
	); err != nil {
		return err
	}
	return b.addHeadDimAndFileType(arch)
}

// addHeadDimAndFileType ends set_gguf_parameters in b4748 and in current
// llama.cpp alike: head_dim, when the config gives it, as the attention key
// and value length, then general.file_type.
func (b *Builder) addHeadDimAndFileType(arch string) error {
	if err := b.addParams(arch, u32(".attention.key_length", "head_dim"), u32(".attention.value_length", "head_dim")); err != nil {
		return err
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
