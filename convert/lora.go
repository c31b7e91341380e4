package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/safetensors"
)

// LoraOptions control a PEFT adapter conversion.
type LoraOptions struct {
	// BaseDir holds the base model's config.json (its weights are not read).
	BaseDir string
	// Name overrides general.name (default: the adapter folder's name in
	// title form, as the converter derives it).
	Name string
}

// ConvertLora converts a PEFT LoRA adapter (adapter_config.json and
// adapter_model.safetensors in dir) to a GGUF adapter as llama.cpp b4748's
// convert_lora_to_gguf.py does: tensors named BASE.lora_a / BASE.lora_b
// after the base tensor's GGUF name, in the order of the sorted safetensors
// names, all F32 whatever the output type (the converter keeps F32 for
// every name not ending in .weight); lora_b of attn_q/attn_k has its rows
// permuted as the base converter permutes q_proj/k_proj. The metadata is
// general.architecture, general.type = adapter, adapter.type = lora,
// general.name, adapter.lora.alpha and general.quantization_version.
func ConvertLora(dir string, opt LoraOptions) (*Result, error) {
	if opt.BaseDir == "" {
		return nil, errors.New("--base is needed: the base model's folder with config.json (no weights are read)")
	}
	cfgPath := filepath.Join(opt.BaseDir, "config.json")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("base model config: %w", err)
	}
	cfg, hfArch, arch, err := parseConfigArch(data, cfgPath)
	if err != nil {
		return nil, err
	}
	if arch.GGUFArch() != "llama" {
		return nil, fmt.Errorf("%s: LoRA conversion supports llama-architecture bases, not %s", cfgPath, hfArch)
	}
	heads, err := cfg.RequireUint32("num_attention_heads")
	if err != nil {
		return nil, err
	}
	kvHeads, ok, err := cfg.Uint32("num_key_value_heads")
	if err != nil {
		return nil, err
	}
	if !ok {
		kvHeads = heads
	}
	alpha, err := readLoraAlpha(filepath.Join(dir, "adapter_config.json"))
	if err != nil {
		return nil, err
	}
	stPath := filepath.Join(dir, "adapter_model.safetensors")
	if _, err := os.Stat(stPath); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: missing (adapter_model.bin adapters are not supported; convert them to safetensors)", stPath)
		}
		return nil, err
	}
	ckpt, err := safetensors.OpenFile(stPath)
	if err != nil {
		return nil, err
	}
	res := &Result{HFArch: hfArch, OutType: "f32", ckpt: ckpt}
	success := false
	defer func() {
		if !success {
			res.Close()
		}
	}()
	names := make([]string, 0, len(ckpt.Tensors))
	for _, t := range ckpt.Tensors {
		names = append(names, t.Name)
		res.InputBytes += int64(t.Size())
	}
	sort.Strings(names) // safetensors' load_file yields the names sorted

	type pair struct{ a, b *safetensors.Tensor }
	var order []string
	pairs := map[string]*pair{}
	var norms []*formats.Tensor
	for _, n := range names {
		t, _ := ckpt.Tensor(n)
		base := loraBaseName(n)
		isA := strings.Contains(n, ".lora_A.weight") || strings.Contains(n, ".lora_embedding_A")
		isB := strings.Contains(n, ".lora_B.weight") || strings.Contains(n, ".lora_embedding_B")
		if !isA && !isB {
			switch {
			case strings.Contains(n, ".base_layer.weight"):
				continue
			case strings.Contains(n, "_layernorm") || strings.Contains(n, ".norm"):
				g, _, err := loraGGUFName(base)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", stPath, err)
				}
				nt, err := loraTensor(g, t, nil, false)
				if err != nil {
					return nil, err
				}
				norms = append(norms, nt)
				order = append(order, "\x00norm:"+g)
				continue
			case strings.Contains(n, ".embed_tokens.weight") || strings.Contains(n, ".lm_head.weight"):
				return nil, fmt.Errorf("%s: tensor %s: the adapter holds embeddings (new tokens added in fine-tuning?); not supported", stPath, n)
			}
			return nil, fmt.Errorf("%s: unexpected tensor %s: not a lora_A or lora_B tensor", stPath, n)
		}
		p, seen := pairs[base]
		if !seen {
			p = &pair{}
			pairs[base] = p
			order = append(order, base)
		}
		if isA {
			p.a = t
		} else {
			p.b = t
		}
	}
	m := &formats.Model{Arch: "llama"}
	ni := 0
	for _, base := range order {
		if strings.HasPrefix(base, "\x00norm:") {
			m.Tensors = append(m.Tensors, norms[ni])
			ni++
			continue
		}
		p := pairs[base]
		if p.a == nil || p.b == nil {
			return nil, fmt.Errorf("%s: %s has only one of lora_A and lora_B", stPath, base)
		}
		if strings.Contains(base, "embed_tokens") || strings.Contains(base, "lm_head") {
			return nil, fmt.Errorf("%s: %s: adapters on the embeddings or the output are not supported", stPath, base)
		}
		g, rows, err := loraGGUFName(base)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", stPath, err)
		}
		if len(p.a.Shape) != 2 || len(p.b.Shape) != 2 || p.a.Shape[0] != p.b.Shape[1] {
			return nil, fmt.Errorf("%s: %s: lora_A %v and lora_B %v are not [r, in] and [out, r]", stPath, base, p.a.Shape, p.b.Shape)
		}
		var perm formats.Transform
		switch rows {
		case "q":
			perm = permuteRows{nHead: int(heads)}
		case "k":
			perm = permuteRows{nHead: int(kvHeads)}
		}
		ta, err := loraTensor(g+".lora_a", p.a, nil, true)
		if err != nil {
			return nil, err
		}
		tb, err := loraTensor(g+".lora_b", p.b, perm, true)
		if err != nil {
			return nil, err
		}
		m.Tensors = append(m.Tensors, ta, tb)
	}
	if len(m.Tensors) == 0 {
		return nil, fmt.Errorf("%s: no LoRA tensors", stPath)
	}
	name := generalName(opt.Name, dir)
	m.KV = formats.KVs{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.type", Value: "adapter"},
		{Key: "adapter.type", Value: "lora"},
	}
	if name != "" {
		m.KV = append(m.KV, formats.KV{Key: "general.name", Value: name})
	}
	m.KV = append(m.KV,
		formats.KV{Key: "adapter.lora.alpha", Value: alpha},
		formats.KV{Key: "general.quantization_version", Value: uint32(QuantizationVersion)})
	res.Model = m
	success = true
	return res, nil
}

// readLoraAlpha reads lora_alpha from PEFT's adapter_config.json.
func readLoraAlpha(path string) (float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("adapter config: %w", err)
	}
	var c struct {
		Alpha *float64 `json:"lora_alpha"`
		Type  string   `json:"peft_type"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return 0, fmt.Errorf("%s: %w: %v", path, ErrConfig, err)
	}
	if c.Alpha == nil {
		return 0, fmt.Errorf("%s: %w: no lora_alpha", path, ErrConfig)
	}
	if c.Type != "" && c.Type != "LORA" {
		return 0, fmt.Errorf("%s: %w: peft_type %q is not LORA", path, ErrConfig, c.Type)
	}
	a := float32(*c.Alpha)
	if math.IsInf(float64(a), 0) || math.IsNaN(float64(a)) {
		return 0, fmt.Errorf("%s: %w: lora_alpha %v does not fit a float32", path, ErrConfig, *c.Alpha)
	}
	return a, nil
}

// loraBaseName is the converter's get_base_tensor_name.
func loraBaseName(n string) string {
	n = strings.ReplaceAll(n, "base_model.model.", "")
	for _, s := range []string{".lora_A.weight", ".lora_B.weight", ".lora_embedding_A", ".lora_embedding_B"} {
		n = strings.ReplaceAll(n, s, ".weight")
	}
	return n
}

// llamaNames maps llama's Hugging Face tensor names (after
// "model.layers.N." for layer tensors, without .weight) to their GGUF names
// (after "blk.N."), from the converter's own tensor rules.
func llamaNames() (layer, global map[string]string) {
	hp := &decoderHParams{}
	layer, global = map[string]string{}, map[string]string{}
	for _, r := range llamaLayerRules(hp) {
		layer[strings.TrimSuffix(r.hf, ".weight")] = strings.TrimSuffix(r.gguf, ".weight")
	}
	for _, r := range llamaGlobalRules(hp) {
		global[strings.TrimSuffix(r.hf, ".weight")] = strings.TrimSuffix(r.gguf, ".weight")
	}
	return layer, global
}

// loraGGUFName maps a base tensor's HF name (with .weight) to its GGUF name
// and says whether its rows need the q ("q") or k ("k") permutation.
func loraGGUFName(base string) (string, string, error) {
	stem, suffix, ok := cutSuffix(base)
	if !ok {
		return "", "", fmt.Errorf("tensor %s cannot be mapped (no .weight or .bias suffix)", base)
	}
	layerNames, globalNames := llamaNames()
	if m := layerRE.FindStringSubmatch(stem); m != nil {
		if g, ok := layerNames[m[2]]; ok {
			perm := ""
			switch m[2] {
			case "self_attn.q_proj":
				perm = "q"
			case "self_attn.k_proj":
				perm = "k"
			}
			return "blk." + m[1] + "." + g + suffix, perm, nil
		}
	} else if g, ok := globalNames[stem]; ok {
		return g + suffix, "", nil
	}
	return "", "", fmt.Errorf("tensor %s cannot be mapped to a GGUF tensor of architecture llama", base)
}

// loraTensor makes an F32 output tensor of t (shape reversed into ggml
// order), permuting its rows when perm is set.
func loraTensor(name string, t *safetensors.Tensor, perm formats.Transform, matrix bool) (*formats.Tensor, error) {
	switch t.DType {
	case safetensors.F32, safetensors.F16, safetensors.BF16:
	default:
		return nil, fmt.Errorf("%s: tensor %s has dtype %s; only F32, F16 and BF16 can be converted", t.File.Path, t.Name, t.DType)
	}
	if matrix && len(t.Shape) != 2 {
		return nil, fmt.Errorf("%s: tensor %s has shape %v, want a matrix", t.File.Path, t.Name, t.Shape)
	}
	if len(t.Shape) > 4 {
		return nil, fmt.Errorf("%s: tensor %s has %d dimensions", t.File.Path, t.Name, len(t.Shape))
	}
	shape := make([]uint64, 0, 4)
	for i := len(t.Shape) - 1; i >= 0; i-- {
		shape = append(shape, t.Shape[i])
	}
	if len(shape) == 0 {
		shape = append(shape, 1)
	}
	src, err := t.Source()
	if err != nil {
		return nil, err
	}
	nt := &formats.Tensor{Name: name, Shape: shape, Type: ggml.TypeF32, Source: src}
	if perm != nil {
		nt.Transforms = []formats.Transform{perm}
	}
	return nt, nil
}
