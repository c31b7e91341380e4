package eval

import (
	"fmt"

	"github.com/llqt/llqt/formats"
)

// Hparams are the hyperparameters every supported architecture shares,
// read from the GGUF metadata with llama.cpp's defaults for keys that are
// absent. Each architecture's loader (arch_*.go) reads its own keys.
type Hparams struct {
	Arch      string
	NCtxTrain int // <arch>.context_length
	NEmbd     int // <arch>.embedding_length
	NFF       int // <arch>.feed_forward_length
	NLayer    int // <arch>.block_count
	NHead     int // <arch>.attention.head_count
	NHeadKV   int // <arch>.attention.head_count_kv (default NHead)
	HeadDimK  int // <arch>.attention.key_length (default NEmbd/NHead)
	HeadDimV  int // <arch>.attention.value_length (default NEmbd/NHead)
	NRot      int // <arch>.rope.dimension_count (default HeadDimK)
	NVocab    int // <arch>.vocab_size, else the token_embd rows
	RMSEps    float32

	RopeFreqBase  float32 // default 10000
	RopeFreqScale float32 // 1/<arch>.rope.scaling.factor; 1 when unscaled
	// RopeScaling is "none", "linear" or "yarn" (default "linear", which
	// with no factor is no scaling at all).
	RopeScaling    string
	RopeOrigCtx    int     // rope.scaling.original_context_length (YaRN)
	RopeAttnFactor float32 // rope.scaling.attn_factor (default 1)
	// YaRN parameters: llama.cpp's context defaults. ExtFactor is 1 for
	// YaRN scaling and 0 otherwise.
	YarnExtFactor float32
	YarnBetaFast  float32
	YarnBetaSlow  float32
}

// maxLayers bounds block_count, so that a corrupt file cannot make the
// per-layer readers allocate without limit.
const maxLayers = 1 << 16

// archUint reads an unsigned hyperparameter. A per-layer array is accepted
// when every layer has the same value, since this engine gives all layers
// one shape.
func archUint(kv formats.KVs, key string, nLayer int) (int, bool, error) {
	vals, ok, err := kv.LayerInts(key, nLayer)
	if !ok || err != nil {
		return 0, ok, err
	}
	for _, x := range vals[1:] {
		if x != vals[0] {
			return 0, false, fmt.Errorf("%s: per-layer values differ (%v); not supported", key, vals)
		}
	}
	return vals[0], true, nil
}

// HparamsFromKV reads the common hyperparameters of a model of a supported
// architecture.
func HparamsFromKV(kv formats.KVs) (Hparams, error) {
	var h Hparams
	arch, ok := kv.String("general.architecture")
	if !ok {
		return h, fmt.Errorf("missing general.architecture")
	}
	h.Arch = arch
	if _, ok := archs[arch]; !ok {
		return h, unsupportedArch(arch)
	}
	nLayer, ok := kv.Uint(arch + ".block_count")
	if !ok {
		return h, fmt.Errorf("missing %s.block_count", arch)
	}
	if nLayer == 0 || nLayer > maxLayers {
		return h, fmt.Errorf("%s.block_count = %d is out of range (1 to %d)", arch, nLayer, maxLayers)
	}
	h.NLayer = int(nLayer)
	req := func(name string, dst *int) error {
		v, ok, err := archUint(kv, arch+"."+name, h.NLayer)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("missing %s.%s", arch, name)
		}
		if v <= 0 {
			return fmt.Errorf("%s.%s = %d, must be positive", arch, name, v)
		}
		*dst = v
		return nil
	}
	opt := func(name string, dst *int, def int) error {
		v, ok, err := archUint(kv, arch+"."+name, h.NLayer)
		if err != nil {
			return err
		}
		if !ok {
			v = def
		}
		*dst = v
		return nil
	}
	for _, r := range []struct {
		name string
		dst  *int
	}{
		{"context_length", &h.NCtxTrain},
		{"embedding_length", &h.NEmbd},
		{"feed_forward_length", &h.NFF},
		{"attention.head_count", &h.NHead},
	} {
		if err := req(r.name, r.dst); err != nil {
			return h, err
		}
	}
	if err := opt("attention.head_count_kv", &h.NHeadKV, h.NHead); err != nil {
		return h, err
	}
	if h.NHeadKV <= 0 || h.NHead%h.NHeadKV != 0 {
		return h, fmt.Errorf("%s.attention.head_count_kv = %d does not divide head_count %d", arch, h.NHeadKV, h.NHead)
	}
	if err := opt("attention.key_length", &h.HeadDimK, h.NEmbd/h.NHead); err != nil {
		return h, err
	}
	if err := opt("attention.value_length", &h.HeadDimV, h.NEmbd/h.NHead); err != nil {
		return h, err
	}
	if err := opt("rope.dimension_count", &h.NRot, h.HeadDimK); err != nil {
		return h, err
	}
	if h.HeadDimK <= 0 || h.HeadDimV <= 0 {
		return h, fmt.Errorf("head dimensions k=%d v=%d must be positive", h.HeadDimK, h.HeadDimV)
	}
	if h.NRot != h.HeadDimK {
		// llama.cpp requires it for llama; the other architectures here
		// rotate whole heads too, and the engine relies on it.
		return h, fmt.Errorf("%s.rope.dimension_count = %d, the engine needs the head dimension %d", arch, h.NRot, h.HeadDimK)
	}
	if h.NRot%2 != 0 {
		return h, fmt.Errorf("rope dimension %d is odd", h.NRot)
	}
	if err := opt("vocab_size", &h.NVocab, 0); err != nil {
		return h, err
	}

	f32 := func(name string, def float32) float32 {
		if v, ok := kv.Float(arch + "." + name); ok {
			return float32(v)
		}
		return def
	}
	h.RMSEps = f32("attention.layer_norm_rms_epsilon", 1e-5)
	h.RopeFreqBase = f32("rope.freq_base", 10000)
	scale := f32("rope.scaling.factor", 0)
	if scale == 0 {
		scale = f32("rope.scale_linear", 0)
	}
	h.RopeFreqScale = 1
	if scale != 0 {
		h.RopeFreqScale = 1 / scale
	}
	h.RopeScaling = "linear"
	if s, ok := kv.String(arch + ".rope.scaling.type"); ok {
		h.RopeScaling = s
	}
	switch h.RopeScaling {
	case "none":
		h.RopeFreqScale = 1
	case "linear":
	case "yarn":
		h.YarnExtFactor = 1
	default:
		return h, fmt.Errorf("%s.rope.scaling.type %q is not supported (none, linear, yarn)", arch, h.RopeScaling)
	}
	if err := opt("rope.scaling.original_context_length", &h.RopeOrigCtx, h.NCtxTrain); err != nil {
		return h, err
	}
	h.RopeAttnFactor = f32("rope.scaling.attn_factor", 1)
	h.YarnBetaFast = 32
	h.YarnBetaSlow = 1
	return h, nil
}
