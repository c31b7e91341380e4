package convert

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/safetensors"
)

// Architecture converts one family of Hugging Face models. The Builder
// calls its methods in this order: Check, ExtraTensors, MapTensor for each
// checkpoint tensor, Params, Vocab.
type Architecture interface {
	// GGUFArch is the general.architecture value ("llama").
	GGUFArch() string
	// Check validates the config against the checkpoint before anything is
	// written.
	Check(b *Builder) error
	// ExtraTensors adds generated tensors (rope_freqs) ahead of the
	// checkpoint's, as convert_hf_to_gguf.py does.
	ExtraTensors(b *Builder) error
	// MapTensor adds the output tensor(s) for one checkpoint tensor.
	MapTensor(b *Builder, t *safetensors.Tensor) error
	// Params adds the hyperparameter keys (after general.*).
	Params(b *Builder) error
	// Vocab adds the tokenizer keys.
	Vocab(b *Builder) error
}

var registry = map[string]func() Architecture{}

// Register makes an architecture available under Hugging Face class names
// (config.json "architectures").
func Register(newArch func() Architecture, hfNames ...string) {
	for _, n := range hfNames {
		if _, dup := registry[n]; dup {
			panic("convert: architecture " + n + " registered twice")
		}
		registry[n] = newArch
	}
}

// Supported lists the registered Hugging Face architecture names, sorted.
func Supported() []string {
	return slices.Sorted(maps.Keys(registry))
}

// parseConfigArch parses config.json and looks up the architecture it
// names, returning the Hugging Face class name and a fresh converter.
func parseConfigArch(data []byte, path string) (*Config, string, Architecture, error) {
	cfg, err := ParseConfig(data, path)
	if err != nil {
		return nil, "", nil, err
	}
	hfArch, arch, err := lookup(cfg)
	if err != nil {
		return nil, "", nil, err
	}
	return cfg, hfArch, arch, nil
}

func lookup(cfg *Config) (string, Architecture, error) {
	archs, err := cfg.Architectures()
	if err != nil {
		return "", nil, err
	}
	// convert_hf_to_gguf.py uses the first entry.
	mk, ok := registry[archs[0]]
	if !ok {
		return "", nil, fmt.Errorf("%s: %w: architecture %q is not supported (supported: %s)",
			cfg.Path, ErrConfig, archs[0], strings.Join(Supported(), ", "))
	}
	return archs[0], mk(), nil
}

// permuteRows is the row permutation convert_hf_to_gguf.py applies to
// q_proj/k_proj: Hugging Face stores each head's rotary pairs as two halves
// (rotate_half), llama.cpp's kernels want them interleaved. Within each of
// nHead groups of rows, row j*half+i moves to 2*i+j.
type permuteRows struct{ nHead int }

func (p permuteRows) Name() string { return fmt.Sprintf("qk-permute(heads=%d)", p.nHead) }

// Apply permutes rows; shape is in ggml order, so rows are Shape[1] (1 for
// a bias) and each row has Shape[0] elements.
func (p permuteRows) Apply(data []float32, shape []uint64) error {
	cols := int(shape[0])
	rows := 1
	for _, d := range shape[1:] {
		rows *= int(d)
	}
	if len(shape) == 1 {
		cols, rows = 1, int(shape[0])
	}
	if p.nHead <= 0 || rows%(2*p.nHead) != 0 {
		return fmt.Errorf("%d rows do not split into %d heads of rotary pairs", rows, p.nHead)
	}
	if len(data) != rows*cols {
		return fmt.Errorf("%d values for %d rows of %d", len(data), rows, cols)
	}
	half := rows / p.nHead / 2
	src := append([]float32(nil), data...)
	for h := 0; h < p.nHead; h++ {
		base := h * 2 * half
		for j := 0; j < 2; j++ {
			for i := 0; i < half; i++ {
				from := base + j*half + i
				to := base + 2*i + j
				copy(data[to*cols:(to+1)*cols], src[from*cols:(from+1)*cols])
			}
		}
	}
	return nil
}

// SourceRows implements formats.RowPermutation: output row base+2*i+j
// comes from input row base+j*half+i, as Apply moves them.
func (p permuteRows) SourceRows(shape []uint64) ([]int, error) {
	rows := 1
	for _, d := range shape[1:] {
		rows *= int(d)
	}
	if len(shape) < 2 || p.nHead <= 0 || rows%(2*p.nHead) != 0 {
		return nil, fmt.Errorf("%d rows do not split into %d heads of rotary pairs", rows, p.nHead)
	}
	half := rows / p.nHead / 2
	from := make([]int, rows)
	for h := 0; h < p.nHead; h++ {
		base := h * 2 * half
		for j := 0; j < 2; j++ {
			for i := 0; i < half; i++ {
				from[base+2*i+j] = base + j*half + i
			}
		}
	}
	return from, nil
}

var _ formats.RowPermutation = permuteRows{}
