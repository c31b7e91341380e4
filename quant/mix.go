package quant

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
)

// FileType is llama.cpp's llama_ftype: the id stored in general.file_type
// that names a quantization mix.
type FileType uint32

// The llama_ftype ids of llama.cpp b4748 (include/llama.h).
const (
	FileTypeF32     FileType = 0
	FileTypeF16     FileType = 1
	FileTypeQ4_0    FileType = 2
	FileTypeQ4_1    FileType = 3
	FileTypeQ8_0    FileType = 7
	FileTypeQ5_0    FileType = 8
	FileTypeQ5_1    FileType = 9
	FileTypeQ2_K    FileType = 10
	FileTypeQ3_K_S  FileType = 11
	FileTypeQ3_K_M  FileType = 12
	FileTypeQ3_K_L  FileType = 13
	FileTypeQ4_K_S  FileType = 14
	FileTypeQ4_K_M  FileType = 15
	FileTypeQ5_K_S  FileType = 16
	FileTypeQ5_K_M  FileType = 17
	FileTypeQ6_K    FileType = 18
	FileTypeIQ2_XXS FileType = 19
	FileTypeIQ2_XS  FileType = 20
	FileTypeQ2_K_S  FileType = 21
	FileTypeIQ3_XS  FileType = 22
	FileTypeIQ3_XXS FileType = 23
	FileTypeIQ1_S   FileType = 24
	FileTypeIQ4_NL  FileType = 25
	FileTypeIQ3_S   FileType = 26
	FileTypeIQ3_M   FileType = 27
	FileTypeIQ2_S   FileType = 28
	FileTypeIQ2_M   FileType = 29
	FileTypeIQ4_XS  FileType = 30
	FileTypeIQ1_M   FileType = 31
	FileTypeBF16    FileType = 32
	FileTypeTQ1_0   FileType = 36
	FileTypeTQ2_0   FileType = 37

	// FileTypeGuessed is or-ed into a file type that llama.cpp inferred
	// from the tensor types because general.file_type was absent.
	FileTypeGuessed FileType = 1024
)

// Preset is one quantization type as llama-quantize offers it.
type Preset struct {
	// Name as llama-quantize spells it ("Q4_K_M").
	Name string
	// FileType is written to general.file_type and selects the mix rules.
	FileType FileType
	// Default is the type of every quantizable tensor before the mix rules.
	Default ggml.Type
	// Copy means "COPY": every tensor keeps its type and bytes.
	Copy bool
	// Alias names the preset this one stands for ("Q4_K" → "Q4_K_M").
	Alias string
	// NeedsImatrix: llama-quantize refuses this preset without an
	// importance matrix because the result would be garbage.
	NeedsImatrix bool
	// Description is llama-quantize's own one-line summary.
	Description string
}

// presets lists llama-quantize's QUANT_OPTIONS in its order, so lookups by
// ftype id find the same name it does.
var presets = []Preset{
	{Name: "Q4_0", FileType: FileTypeQ4_0, Default: ggml.TypeQ4_0, Description: " 4.34G, +0.4685 ppl @ Llama-3-8B"},
	{Name: "Q4_1", FileType: FileTypeQ4_1, Default: ggml.TypeQ4_1, Description: " 4.78G, +0.4511 ppl @ Llama-3-8B"},
	{Name: "Q5_0", FileType: FileTypeQ5_0, Default: ggml.TypeQ5_0, Description: " 5.21G, +0.1316 ppl @ Llama-3-8B"},
	{Name: "Q5_1", FileType: FileTypeQ5_1, Default: ggml.TypeQ5_1, Description: " 5.65G, +0.1062 ppl @ Llama-3-8B"},
	{Name: "IQ2_XXS", FileType: FileTypeIQ2_XXS, Default: ggml.TypeIQ2_XXS, NeedsImatrix: true, Description: " 2.06 bpw quantization"},
	{Name: "IQ2_XS", FileType: FileTypeIQ2_XS, Default: ggml.TypeIQ2_XS, NeedsImatrix: true, Description: " 2.31 bpw quantization"},
	{Name: "IQ2_S", FileType: FileTypeIQ2_S, Default: ggml.TypeIQ2_XS, NeedsImatrix: true, Description: " 2.5  bpw quantization"},
	{Name: "IQ2_M", FileType: FileTypeIQ2_M, Default: ggml.TypeIQ2_S, Description: " 2.7  bpw quantization"},
	{Name: "IQ1_S", FileType: FileTypeIQ1_S, Default: ggml.TypeIQ1_S, NeedsImatrix: true, Description: " 1.56 bpw quantization"},
	{Name: "IQ1_M", FileType: FileTypeIQ1_M, Default: ggml.TypeIQ1_M, NeedsImatrix: true, Description: " 1.75 bpw quantization"},
	{Name: "TQ1_0", FileType: FileTypeTQ1_0, Default: ggml.TypeTQ1_0, Description: " 1.69 bpw ternarization"},
	{Name: "TQ2_0", FileType: FileTypeTQ2_0, Default: ggml.TypeTQ2_0, Description: " 2.06 bpw ternarization"},
	{Name: "Q2_K", FileType: FileTypeQ2_K, Default: ggml.TypeQ2_K, Description: " 2.96G, +3.5199 ppl @ Llama-3-8B"},
	{Name: "Q2_K_S", FileType: FileTypeQ2_K_S, Default: ggml.TypeQ2_K, NeedsImatrix: true, Description: " 2.96G, +3.1836 ppl @ Llama-3-8B"},
	{Name: "IQ3_XXS", FileType: FileTypeIQ3_XXS, Default: ggml.TypeIQ3_XXS, Description: " 3.06 bpw quantization"},
	{Name: "IQ3_S", FileType: FileTypeIQ3_S, Default: ggml.TypeIQ3_S, Description: " 3.44 bpw quantization"},
	{Name: "IQ3_M", FileType: FileTypeIQ3_M, Default: ggml.TypeIQ3_S, Description: " 3.66 bpw quantization mix"},
	{Name: "Q3_K", FileType: FileTypeQ3_K_M, Default: ggml.TypeQ3_K, Alias: "Q3_K_M", Description: "alias for Q3_K_M"},
	{Name: "IQ3_XS", FileType: FileTypeIQ3_XS, Default: ggml.TypeIQ3_S, Description: " 3.3 bpw quantization"},
	{Name: "Q3_K_S", FileType: FileTypeQ3_K_S, Default: ggml.TypeQ3_K, Description: " 3.41G, +1.6321 ppl @ Llama-3-8B"},
	{Name: "Q3_K_M", FileType: FileTypeQ3_K_M, Default: ggml.TypeQ3_K, Description: " 3.74G, +0.6569 ppl @ Llama-3-8B"},
	{Name: "Q3_K_L", FileType: FileTypeQ3_K_L, Default: ggml.TypeQ3_K, Description: " 4.03G, +0.5562 ppl @ Llama-3-8B"},
	{Name: "IQ4_NL", FileType: FileTypeIQ4_NL, Default: ggml.TypeIQ4_NL, Description: " 4.50 bpw non-linear quantization"},
	{Name: "IQ4_XS", FileType: FileTypeIQ4_XS, Default: ggml.TypeIQ4_XS, Description: " 4.25 bpw non-linear quantization"},
	{Name: "Q4_K", FileType: FileTypeQ4_K_M, Default: ggml.TypeQ4_K, Alias: "Q4_K_M", Description: "alias for Q4_K_M"},
	{Name: "Q4_K_S", FileType: FileTypeQ4_K_S, Default: ggml.TypeQ4_K, Description: " 4.37G, +0.2689 ppl @ Llama-3-8B"},
	{Name: "Q4_K_M", FileType: FileTypeQ4_K_M, Default: ggml.TypeQ4_K, Description: " 4.58G, +0.1754 ppl @ Llama-3-8B"},
	{Name: "Q5_K", FileType: FileTypeQ5_K_M, Default: ggml.TypeQ5_K, Alias: "Q5_K_M", Description: "alias for Q5_K_M"},
	{Name: "Q5_K_S", FileType: FileTypeQ5_K_S, Default: ggml.TypeQ5_K, Description: " 5.21G, +0.1049 ppl @ Llama-3-8B"},
	{Name: "Q5_K_M", FileType: FileTypeQ5_K_M, Default: ggml.TypeQ5_K, Description: " 5.33G, +0.0569 ppl @ Llama-3-8B"},
	{Name: "Q6_K", FileType: FileTypeQ6_K, Default: ggml.TypeQ6_K, Description: " 6.14G, +0.0217 ppl @ Llama-3-8B"},
	{Name: "Q8_0", FileType: FileTypeQ8_0, Default: ggml.TypeQ8_0, Description: " 7.96G, +0.0026 ppl @ Llama-3-8B"},
	{Name: "F16", FileType: FileTypeF16, Default: ggml.TypeF16, Description: "14.00G, +0.0020 ppl @ Mistral-7B"},
	{Name: "BF16", FileType: FileTypeBF16, Default: ggml.TypeBF16, Description: "14.00G, -0.0050 ppl @ Mistral-7B"},
	{Name: "F32", FileType: FileTypeF32, Default: ggml.TypeF32, Description: "26.00G              @ 7B"},
	{Name: "COPY", FileType: FileTypeF32, Default: ggml.TypeF32, Copy: true, Description: "only copy tensors, no quantizing"},
}

// Presets returns every preset llama-quantize knows, in its order. Whether
// llqt can encode a preset's types is a separate question: see Supported.
func Presets() []Preset { return append([]Preset(nil), presets...) }

// Supported reports whether every block format the preset's mix rules can
// pick for a llama-family model is implemented by this package.
func (p Preset) Supported() bool {
	if p.Copy {
		return true
	}
	for _, t := range mixTypes(p.FileType, p.Default) {
		if t.Quantized() && !CanQuantize(t) {
			return false
		}
	}
	return true
}

// mixTypes lists the types llama_tensor_get_type may give a llama model
// under ftype (without experts, Falcon or fallbacks), for Supported.
func mixTypes(ft FileType, def ggml.Type) []ggml.Type {
	ts := []ggml.Type{def}
	switch ft {
	case FileTypeQ2_K:
		ts = append(ts, ggml.TypeQ3_K, ggml.TypeQ4_K, ggml.TypeQ6_K)
	case FileTypeQ3_K_S, FileTypeQ4_K_S, FileTypeQ4_K_M, FileTypeQ5_K_S, FileTypeQ5_K_M, FileTypeIQ4_NL, FileTypeIQ4_XS:
		ts = append(ts, ggml.TypeQ5_K, ggml.TypeQ6_K)
	case FileTypeQ3_K_M, FileTypeQ3_K_L:
		ts = append(ts, ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K)
	case FileTypeQ2_K_S:
		ts = append(ts, ggml.TypeQ4_K, ggml.TypeQ6_K)
	case FileTypeQ4_0, FileTypeQ4_1, FileTypeQ5_0, FileTypeQ5_1, FileTypeQ6_K:
		ts = append(ts, ggml.TypeQ6_K)
	case FileTypeIQ2_XXS, FileTypeIQ2_XS:
		ts = append(ts, ggml.TypeQ2_K, ggml.TypeQ4_K, ggml.TypeQ5_K)
	case FileTypeIQ2_S, FileTypeIQ2_M:
		ts = append(ts, ggml.TypeIQ3_S, ggml.TypeQ4_K, ggml.TypeQ5_K)
	case FileTypeIQ1_S, FileTypeIQ1_M:
		ts = append(ts, ggml.TypeIQ2_XXS, ggml.TypeQ2_K, ggml.TypeQ4_K, ggml.TypeQ5_K)
	}
	// The fallbacks for rows that are not a multiple of 256.
	return append(ts, ggml.TypeQ8_0, ggml.TypeQ5_0, ggml.TypeQ5_1, ggml.TypeIQ4_NL)
}

// ParsePreset finds a preset by name, case-insensitively, or by its ftype
// id as llama-quantize accepts it ("15" is Q4_K_M). Aliases resolve to the
// preset they stand for.
func ParsePreset(name string) (Preset, error) {
	for _, p := range presets {
		if strings.EqualFold(p.Name, name) {
			return p.resolve(), nil
		}
	}
	if id, err := strconv.Atoi(strings.TrimSpace(name)); err == nil {
		for _, p := range presets {
			if int(p.FileType) == id && !p.Copy {
				return p.resolve(), nil
			}
		}
	}
	names := make([]string, 0, len(presets))
	for _, p := range presets {
		if p.Supported() {
			names = append(names, p.Name)
		}
	}
	return Preset{}, fmt.Errorf("unknown quantization type %q (supported: %s)", name, strings.Join(names, ", "))
}

func (p Preset) resolve() Preset {
	if p.Alias == "" {
		return p
	}
	for _, q := range presets {
		if q.Name == p.Alias {
			return q
		}
	}
	return p
}

// FileTypeName returns the preset name of a file type ("Q4_K_M"), or
// "type N" for an id no preset has.
func FileTypeName(ft FileType) string {
	guessed := ""
	if ft&FileTypeGuessed != 0 {
		guessed = " (guessed)"
		ft &^= FileTypeGuessed
	}
	for _, p := range presets {
		if p.FileType == ft && p.Alias == "" && !p.Copy {
			return p.Name + guessed
		}
	}
	return fmt.Sprintf("type %d%s", uint32(ft), guessed)
}

// modelInfo is what the mix rules need from the hyperparameters.
type modelInfo struct {
	arch    string
	nLayer  int
	nHead   []int // per layer
	nHeadKV []int // per layer
	nExpert int
	is70B   bool
}

// gqa is n_head/n_head_kv of the first layer (integer division; 0 when the
// layer has no KV heads), as llama_hparams::n_gqa() with il = 0.
func (mi *modelInfo) gqa() int {
	if len(mi.nHeadKV) == 0 || mi.nHeadKV[0] == 0 {
		return 0
	}
	return mi.nHead[0] / mi.nHeadKV[0]
}

// readModelInfo reads the hyperparameters llama.cpp's loader reads for the
// mix rules: {arch}.block_count, attention.head_count(_kv) (scalars or
// per-layer arrays) and expert_count.
func readModelInfo(m *formats.Model) (*modelInfo, error) {
	arch := m.Arch
	if a, ok := m.KV.String("general.architecture"); ok && a != "" {
		arch = a
	}
	mi := &modelInfo{arch: arch}
	n, ok := m.KV.Uint(arch + ".block_count")
	if !ok {
		return nil, fmt.Errorf("metadata has no %s.block_count: cannot apply the quantization mix rules", arch)
	}
	if n == 0 || n > 1<<16 {
		return nil, fmt.Errorf("metadata %s.block_count = %d is out of range", arch, n)
	}
	mi.nLayer = int(n)
	var err error
	if mi.nHead, err = perLayer(m.KV, arch+".attention.head_count", mi.nLayer, nil); err != nil {
		return nil, err
	}
	if mi.nHeadKV, err = perLayer(m.KV, arch+".attention.head_count_kv", mi.nLayer, mi.nHead); err != nil {
		return nil, err
	}
	if e, ok := m.KV.Uint(arch + ".expert_count"); ok {
		mi.nExpert = int(min(e, 1<<16))
	}
	// llama.cpp marks the model type from the layer count; only "70B"
	// changes the mix (attn_v gets more bits when 8 heads share it).
	switch arch {
	case "llama":
		mi.is70B = mi.nExpert != 8 && mi.nLayer == 80 && mi.nHead[0] != mi.nHeadKV[0]
	case "deci":
		mi.is70B = mi.nLayer == 80
	}
	return mi, nil
}

// perLayer reads a per-layer hyperparameter; absent, it copies def (or
// zeros).
func perLayer(kvs formats.KVs, key string, nLayer int, def []int) ([]int, error) {
	out, ok, err := kvs.LayerInts(key, nLayer)
	if !ok {
		out = make([]int, nLayer)
		copy(out, def)
	}
	return out, err
}

// mixer carries llama-quant.cpp's quantize_state_impl: the per-run counters
// the mix rules consult, in the order the tensors are visited.
type mixer struct {
	ftype       FileType
	info        *modelInfo
	hasImatrix  bool
	hasOutput   bool // the model has its own output.weight (untied embeddings)
	outputType  *ggml.Type
	tokEmbdType *ggml.Type

	nAttentionWV, iAttentionWV int
	nFFNDown, iFFNDown         int
	nFFNGate, iFFNGate         int
	nFFNUp, iFFNUp             int
	nKQuantized, nFallback     int
}

// useMoreBits is llama.cpp's use_more_bits: the first and last eighth of the
// layers and every third layer in between get more bits.
func useMoreBits(iLayer, nLayers int) bool {
	return iLayer < nLayers/8 || iLayer >= 7*nLayers/8 || (iLayer-nLayers/8)%3 == 2
}

func (ft FileType) isIQ1IQ2() bool {
	switch ft {
	case FileTypeIQ2_XXS, FileTypeIQ2_XS, FileTypeIQ1_S, FileTypeIQ2_S, FileTypeIQ2_M, FileTypeIQ1_M:
		return true
	}
	return false
}

// layerOf returns the layer a per-layer tensor belongs to: the running
// counter, or with experts the number in the name (experts' tensors are
// not in layer order in some files).
func (mx *mixer) layerOf(counter, n int, name string) (int, int, error) {
	if mx.info.nExpert > 1 {
		l, ok := blockIndex(name)
		if !ok {
			return 0, 0, fmt.Errorf("failed to determine layer for tensor %s", name)
		}
		if l < 0 || l >= n {
			return 0, 0, fmt.Errorf("bad layer %d for tensor %s: must be in [0, %d)", l, name, n)
		}
		return l, n, nil
	}
	return counter, n, nil
}

// tensorType is llama_tensor_get_type: the type for one quantizable tensor
// given the preset's default, with a short reason for plans. It advances
// the layer counters, so tensors must be visited in file order.
func (mx *mixer) tensorType(name string, shape []uint64, newType ggml.Type) (ggml.Type, string, bool, error) {
	ft := mx.ftype
	info := mx.info
	arch := info.arch
	falcon := arch == "falcon"
	gqa := info.gqa()
	reason := ""
	set := func(t ggml.Type, why string) { newType, reason = t, why }

	switch {
	case name == "output.weight" || (!mx.hasOutput && name == "token_embd.weight"):
		what := "output"
		if name != "output.weight" {
			what = "tied token_embd"
		}
		switch {
		case mx.outputType != nil:
			set(*mx.outputType, what+": --output-tensor-type")
		case falcon || shape[0]%uint64(newType.BlockSize()) != 0:
			set(ggml.TypeQ8_0, what+": row not a multiple of the block")
		case ft == FileTypeIQ2_XXS || ft == FileTypeIQ2_XS || ft == FileTypeIQ3_XXS || ft == FileTypeIQ1_S ||
			ft == FileTypeIQ2_S || ft == FileTypeIQ2_M || ft == FileTypeIQ1_M:
			set(ggml.TypeQ5_K, what)
		case newType != ggml.TypeQ8_0:
			set(ggml.TypeQ6_K, what)
		}
	case name == "token_embd.weight":
		switch {
		case mx.tokEmbdType != nil:
			set(*mx.tokEmbdType, "token_embd: --token-embedding-type")
		case ft == FileTypeIQ2_XXS || ft == FileTypeIQ2_XS || ft == FileTypeIQ1_S || ft == FileTypeIQ1_M:
			set(ggml.TypeQ2_K, "token_embd")
		case ft == FileTypeIQ2_S || ft == FileTypeIQ2_M || ft == FileTypeIQ3_XXS:
			set(ggml.TypeIQ3_S, "token_embd")
		case ft == FileTypeTQ1_0 || ft == FileTypeTQ2_0:
			set(ggml.TypeQ4_K, "token_embd")
		}
	case ft.isIQ1IQ2():
		iq3sOrQ2K := ggml.TypeQ2_K
		if ft == FileTypeIQ2_S || ft == FileTypeIQ2_M {
			iq3sOrQ2K = ggml.TypeIQ3_S
		}
		switch {
		case strings.Contains(name, "attn_v.weight"):
			if gqa >= 4 || info.nExpert >= 4 {
				set(ggml.TypeQ4_K, "attn_v: GQA/experts")
			} else {
				set(iq3sOrQ2K, "attn_v")
			}
			mx.iAttentionWV++
		case info.nExpert == 8 && strings.Contains(name, "attn_k.weight"):
			set(ggml.TypeQ4_K, "attn_k: 8 experts")
		case strings.Contains(name, "ffn_down"):
			if mx.iFFNDown < mx.nFFNDown/8 {
				set(iq3sOrQ2K, "ffn_down: first eighth")
			}
			mx.iFFNDown++
		case strings.Contains(name, "attn_output.weight"):
			if info.nExpert == 8 {
				set(ggml.TypeQ5_K, "attn_output: 8 experts")
			} else if ft == FileTypeIQ1_S || ft == FileTypeIQ1_M {
				set(ggml.TypeIQ2_XXS, "attn_output")
			} else if ft == FileTypeIQ2_S || ft == FileTypeIQ2_M {
				set(ggml.TypeIQ3_S, "attn_output")
			}
		}
	case strings.Contains(name, "attn_v.weight"):
		i, n := mx.iAttentionWV, mx.nAttentionWV
		switch {
		case ft == FileTypeQ2_K:
			if gqa >= 4 {
				set(ggml.TypeQ4_K, "attn_v: GQA ≥ 4")
			} else {
				set(ggml.TypeQ3_K, "attn_v")
			}
		case ft == FileTypeQ2_K_S && gqa >= 4:
			set(ggml.TypeQ4_K, "attn_v: GQA ≥ 4")
		case ft == FileTypeIQ3_XXS:
			switch {
			case gqa >= 4:
				set(ggml.TypeQ4_K, "attn_v: GQA ≥ 4")
			case !mx.hasImatrix:
				set(ggml.TypeIQ3_S, "attn_v: no imatrix")
			default:
				set(ggml.TypeIQ3_XXS, "attn_v")
			}
		case (ft == FileTypeIQ3_XS || ft == FileTypeIQ3_S) && gqa >= 4:
			set(ggml.TypeQ4_K, "attn_v: GQA ≥ 4")
		case ft == FileTypeIQ3_M:
			set(ggml.TypeQ4_K, "attn_v")
		case ft == FileTypeQ3_K_M:
			if i < 2 {
				set(ggml.TypeQ5_K, "attn_v: first 2 layers")
			} else {
				set(ggml.TypeQ4_K, "attn_v")
			}
		case ft == FileTypeQ3_K_L:
			set(ggml.TypeQ5_K, "attn_v")
		case (ft == FileTypeIQ4_NL || ft == FileTypeIQ4_XS) && gqa >= 4:
			set(ggml.TypeQ5_K, "attn_v: GQA ≥ 4")
		case (ft == FileTypeQ4_K_M || ft == FileTypeQ5_K_M) && useMoreBits(i, n):
			set(ggml.TypeQ6_K, "attn_v: use_more_bits")
		case ft == FileTypeQ4_K_S && i < 4:
			set(ggml.TypeQ5_K, "attn_v: first 4 layers")
		}
		if info.is70B && (newType == ggml.TypeQ3_K || newType == ggml.TypeQ4_K) {
			set(ggml.TypeQ5_K, "attn_v: 70B (8 heads share attn_v)")
		}
		if info.nExpert == 8 {
			set(ggml.TypeQ8_0, "attn_v: 8 experts")
		}
		mx.iAttentionWV++
	case strings.Contains(name, "attn_k.weight"):
		switch {
		case info.nExpert == 8:
			set(ggml.TypeQ8_0, "attn_k: 8 experts")
		case ft == FileTypeIQ3_XS:
			set(ggml.TypeIQ3_XXS, "attn_k")
		case ft == FileTypeIQ3_XXS:
			set(ggml.TypeIQ2_S, "attn_k")
		}
	case strings.Contains(name, "attn_q.weight"):
		switch ft {
		case FileTypeIQ3_XS:
			set(ggml.TypeIQ3_XXS, "attn_q")
		case FileTypeIQ3_XXS:
			set(ggml.TypeIQ2_S, "attn_q")
		}
	case strings.Contains(name, "ffn_down"):
		il, n, err := mx.layerOf(mx.iFFNDown, mx.nFFNDown, name)
		if err != nil {
			return 0, "", false, err
		}
		switch {
		case ft == FileTypeQ2_K:
			set(ggml.TypeQ3_K, "ffn_down")
		case ft == FileTypeQ2_K_S:
			if il < n/8 {
				set(ggml.TypeQ4_K, "ffn_down: first eighth")
			}
		case ft == FileTypeIQ3_XXS && !mx.hasImatrix:
			if il < n/8 {
				set(ggml.TypeQ4_K, "ffn_down: first eighth, no imatrix")
			} else {
				set(ggml.TypeQ3_K, "ffn_down: no imatrix")
			}
		case ft == FileTypeQ3_K_M:
			switch {
			case il < n/16:
				set(ggml.TypeQ5_K, "ffn_down: first sixteenth")
			case !falcon || useMoreBits(il, n):
				set(ggml.TypeQ4_K, "ffn_down")
			default:
				set(ggml.TypeQ3_K, "ffn_down")
			}
		case ft == FileTypeIQ3_M && (il < n/8 || (info.nExpert == 8 && useMoreBits(il, n))):
			set(ggml.TypeQ4_K, "ffn_down")
		case ft == FileTypeQ3_K_L:
			if falcon {
				set(ggml.TypeQ4_K, "ffn_down")
			} else {
				set(ggml.TypeQ5_K, "ffn_down")
			}
		case ft == FileTypeQ4_K_M:
			if falcon {
				switch {
				case il < n/16:
					set(ggml.TypeQ6_K, "ffn_down: first sixteenth")
				case useMoreBits(il, n):
					set(ggml.TypeQ5_K, "ffn_down: use_more_bits")
				default:
					set(ggml.TypeQ4_K, "ffn_down")
				}
			} else if useMoreBits(il, n) {
				set(ggml.TypeQ6_K, "ffn_down: use_more_bits")
			}
		case il < n/8 && (ft == FileTypeIQ4_NL || ft == FileTypeIQ4_XS) && !mx.hasImatrix:
			set(ggml.TypeQ5_K, "ffn_down: first eighth, no imatrix")
		case ft == FileTypeQ5_K_M && useMoreBits(il, n):
			set(ggml.TypeQ6_K, "ffn_down: use_more_bits")
		case ft == FileTypeQ4_K_S && !falcon && il < n/8:
			set(ggml.TypeQ5_K, "ffn_down: first eighth")
		case (ft == FileTypeQ4_0 || ft == FileTypeQ5_0) && mx.hasImatrix && il < n/8:
			if ft == FileTypeQ4_0 {
				set(ggml.TypeQ4_1, "ffn_down: first eighth, imatrix")
			} else {
				set(ggml.TypeQ5_1, "ffn_down: first eighth, imatrix")
			}
		}
		mx.iFFNDown++
	case strings.Contains(name, "attn_output.weight"):
		if !falcon {
			if info.nExpert == 8 {
				switch ft {
				case FileTypeQ2_K, FileTypeIQ3_XS, FileTypeIQ3_XXS, FileTypeQ3_K_S, FileTypeQ3_K_M, FileTypeIQ4_NL,
					FileTypeQ4_K_S, FileTypeQ4_K_M, FileTypeIQ3_S, FileTypeIQ3_M, FileTypeIQ4_XS:
					set(ggml.TypeQ5_K, "attn_output: 8 experts")
				}
			} else {
				switch ft {
				case FileTypeQ2_K:
					set(ggml.TypeQ3_K, "attn_output")
				case FileTypeIQ3_XXS:
					set(ggml.TypeIQ3_S, "attn_output")
				case FileTypeQ3_K_M, FileTypeIQ3_M:
					set(ggml.TypeQ4_K, "attn_output")
				case FileTypeQ3_K_L:
					set(ggml.TypeQ5_K, "attn_output")
				}
			}
		} else if ft == FileTypeQ3_K_L {
			set(ggml.TypeQ4_K, "attn_output")
		}
	case strings.Contains(name, "attn_qkv.weight"):
		switch ft {
		case FileTypeQ3_K_M, FileTypeQ3_K_L, FileTypeIQ3_M:
			set(ggml.TypeQ4_K, "attn_qkv")
		case FileTypeQ4_K_M:
			set(ggml.TypeQ5_K, "attn_qkv")
		case FileTypeQ5_K_M:
			set(ggml.TypeQ6_K, "attn_qkv")
		}
	case strings.Contains(name, "ffn_gate"):
		il, n, err := mx.layerOf(mx.iFFNGate, mx.nFFNGate, name)
		if err != nil {
			return 0, "", false, err
		}
		if ft == FileTypeIQ3_XS && il >= n/8 && il < 7*n/8 {
			set(ggml.TypeIQ3_XXS, "ffn_gate: middle layers")
		}
		mx.iFFNGate++
	case strings.Contains(name, "ffn_up"):
		il, n, err := mx.layerOf(mx.iFFNUp, mx.nFFNUp, name)
		if err != nil {
			return 0, "", false, err
		}
		if ft == FileTypeIQ3_XS && il >= n/8 && il < 7*n/8 {
			set(ggml.TypeIQ3_XXS, "ffn_up: middle layers")
		}
		mx.iFFNUp++
	}

	// A row that is not a whole number of blocks takes a fallback type.
	block := uint64(newType.BlockSize())
	if block == 0 || shape[0]%block == 0 {
		mx.nKQuantized++
		return newType, reason, false, nil
	}
	wanted := newType
	switch newType {
	case ggml.TypeTQ1_0, ggml.TypeTQ2_0:
		newType = ggml.TypeQ4_0
	case ggml.TypeIQ2_XXS, ggml.TypeIQ2_XS, ggml.TypeIQ2_S, ggml.TypeIQ3_XXS, ggml.TypeIQ3_S, ggml.TypeIQ1_S,
		ggml.TypeIQ1_M, ggml.TypeQ2_K, ggml.TypeQ3_K, ggml.TypeIQ4_XS:
		newType = ggml.TypeIQ4_NL
	case ggml.TypeQ4_K:
		newType = ggml.TypeQ5_0
	case ggml.TypeQ5_K:
		newType = ggml.TypeQ5_1
	case ggml.TypeQ6_K:
		newType = ggml.TypeQ8_0
	default:
		return 0, "", false, fmt.Errorf("tensor %s: row of %d elements is not a multiple of %s's block of %d and %s has no fallback type",
			name, shape[0], wanted, block, wanted)
	}
	if shape[0]%uint64(newType.BlockSize()) != 0 {
		newType = ggml.TypeF16
	}
	mx.nFallback++
	if reason != "" {
		reason += "; "
	}
	reason += fmt.Sprintf("fallback: %d columns not divisible by %d for %s", shape[0], block, wanted)
	return newType, reason, true, nil
}

// blockIndex parses a name beginning "blk.N." as sscanf("blk.%d.") does:
// optional spaces and sign, then digits; the dot after them is not checked.
func blockIndex(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return 0, false
	}
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n, digits := 0, 0
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		if n < 1<<31 {
			n = n*10 + int(s[digits]-'0')
		}
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// lessTensorName is llama_model_loader's weight_name_comparer, the order in
// which llama-quantize writes tensors: by block number (names outside
// "blk.N." count as -1), then by name.
func lessTensorName(a, b string) bool {
	la, ok := blockIndex(a)
	if !ok {
		la = -1
	}
	lb, ok := blockIndex(b)
	if !ok {
		lb = -1
	}
	if la != lb {
		return la < lb
	}
	return a < b
}

// nDims is ggml_n_dims: the number of dimensions up to the last one that
// is not 1 (at least 1).
func nDims(shape []uint64) int {
	for i := len(shape) - 1; i >= 1; i-- {
		if shape[i] != 1 {
			return i + 1
		}
	}
	return 1
}

// endsWithWeight reproduces `name.rfind("weight") == name.size() - 6`,
// including its quirk: for a 5-byte name both sides are npos.
func endsWithWeight(name string) bool {
	if len(name) < 6 {
		return len(name) == 5 && !strings.Contains(name, "weight")
	}
	return strings.LastIndex(name, "weight") == len(name)-6
}

// neverQuantized gives the reason llama-quantize leaves a tensor as it is
// whatever the preset, or "" when it may be quantized.
func neverQuantized(name string, shape []uint64) string {
	switch {
	case !endsWithWeight(name):
		return "not a weight"
	case nDims(shape) < 2:
		return "1-D"
	case strings.Contains(name, "_norm.weight"):
		return "norm"
	case strings.Contains(name, "ffn_gate_inp.weight"):
		return "expert gating"
	case name == "position_embd.weight" || name == "token_types.weight":
		return "position/token-type embedding"
	case strings.Contains(name, "ssm_conv1d.weight"):
		return "Mamba conv1d"
	case strings.Contains(name, "time_mix_first.weight"), strings.Contains(name, "time_mix_w1.weight"),
		strings.Contains(name, "time_mix_w2.weight"), strings.Contains(name, "time_mix_decay_w1.weight"),
		strings.Contains(name, "time_mix_decay_w2.weight"), strings.Contains(name, "time_mix_lerp_fused.weight"):
		return "RWKV time-mix"
	case strings.Contains(name, "attn_rel_b.weight"):
		return "relative position bias"
	}
	return ""
}

// needsImatrixFor is llama-quantize's per-tensor refusal: these types give
// garbage without an importance matrix.
func needsImatrixFor(t ggml.Type, ft FileType, name string) bool {
	switch t {
	case ggml.TypeIQ2_XXS, ggml.TypeIQ2_XS, ggml.TypeIQ2_S, ggml.TypeIQ1_S:
		return true
	case ggml.TypeIQ1_M:
		return name != "token_embd.weight" && name != "output.weight"
	case ggml.TypeQ2_K:
		return ft == FileTypeQ2_K_S && name != "token_embd.weight"
	}
	return false
}

// guessFileType is llama_model_loader's ftype: general.file_type when
// present, else the most common tensor type (first to reach the highest
// count in file order) marked as guessed.
func guessFileType(m *formats.Model, order []*formats.Tensor) FileType {
	if v, ok := m.KV.Uint("general.file_type"); ok {
		return FileType(v)
	}
	counts := map[ggml.Type]int{}
	best, bestN := ggml.TypeF32, 0
	for _, t := range order {
		counts[t.Type]++
		if counts[t.Type] > bestN {
			best, bestN = t.Type, counts[t.Type]
		}
	}
	ft := FileTypeF32
	switch best {
	case ggml.TypeF32:
		ft = FileTypeF32
	case ggml.TypeF16:
		ft = FileTypeF16
	case ggml.TypeBF16:
		ft = FileTypeBF16
	case ggml.TypeQ4_0:
		ft = FileTypeQ4_0
	case ggml.TypeQ4_1:
		ft = FileTypeQ4_1
	case ggml.TypeQ5_0:
		ft = FileTypeQ5_0
	case ggml.TypeQ5_1:
		ft = FileTypeQ5_1
	case ggml.TypeQ8_0:
		ft = FileTypeQ8_0
	case ggml.TypeQ2_K:
		ft = FileTypeQ2_K
	case ggml.TypeQ3_K:
		ft = FileTypeQ3_K_M
	case ggml.TypeQ4_K:
		ft = FileTypeQ4_K_M
	case ggml.TypeQ5_K:
		ft = FileTypeQ5_K_M
	case ggml.TypeQ6_K:
		ft = FileTypeQ6_K
	case ggml.TypeTQ1_0:
		ft = FileTypeTQ1_0
	case ggml.TypeTQ2_0:
		ft = FileTypeTQ2_0
	case ggml.TypeIQ2_XXS:
		ft = FileTypeIQ2_XXS
	case ggml.TypeIQ2_XS:
		ft = FileTypeIQ2_XS
	case ggml.TypeIQ2_S:
		ft = FileTypeIQ2_S
	case ggml.TypeIQ3_XXS:
		ft = FileTypeIQ3_XXS
	case ggml.TypeIQ1_S:
		ft = FileTypeIQ1_S
	case ggml.TypeIQ1_M:
		ft = FileTypeIQ1_M
	case ggml.TypeIQ4_NL:
		ft = FileTypeIQ4_NL
	case ggml.TypeIQ4_XS:
		ft = FileTypeIQ4_XS
	case ggml.TypeIQ3_S:
		ft = FileTypeIQ3_S
	}
	return ft | FileTypeGuessed
}
