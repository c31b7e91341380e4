package convert

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/pytorch"
	"github.com/llqt/llqt/formats/safetensors"
)

// OutTypes are the accepted --outtype values.
var OutTypes = []string{"f32", "f16", "bf16", "q8_0", "auto"}

// outTypes maps an --outtype to the stored type of the large matrices and
// the general.file_type (llama.cpp's LlamaFileType) it writes.
var outTypes = map[string]struct {
	typ      ggml.Type
	fileType uint32
}{
	"f32":  {ggml.TypeF32, 0},
	"f16":  {ggml.TypeF16, 1},
	"q8_0": {ggml.TypeQ8_0, 7},
	"bf16": {ggml.TypeBF16, 32},
}

// QuantizationVersion is general.quantization_version (GGML_QUANT_VERSION).
const QuantizationVersion = 2

// Options controls a conversion.
type Options struct {
	// OutType is one of OutTypes; "" means "auto".
	OutType string
	// Name overrides general.name (see the package doc for the default).
	Name string
	// VocabOnly writes the metadata and vocabulary without any tensor
	// (--vocab-only); the checkpoint's weights are not needed.
	VocabOnly bool
	// Pre names the BPE pre-tokenizer (--pre) instead of detecting it.
	Pre string
	// Encoder runs a tokenizer.json for pre-tokenizer detection (chkhsh);
	// without it a BPE vocabulary needs Pre.
	Encoder HFEncoder
}

// Result is a converted model. Its tensors read lazily from the input
// checkpoint, which stays open until Close.
type Result struct {
	Model *formats.Model
	// HFArch is the Hugging Face architecture converted.
	HFArch string
	// OutType is the resolved --outtype (never "auto").
	OutType string
	// InputBytes is the size of the checkpoint's tensor data.
	InputBytes int64
	// Warnings are what convert_hf_to_gguf.py would log as warnings.
	Warnings []string

	ckpt *safetensors.Checkpoint
}

// Close releases the input checkpoint.
func (r *Result) Close() error {
	if r.ckpt == nil {
		return nil
	}
	c := r.ckpt
	r.ckpt = nil
	return c.Close()
}

// Builder accumulates the output model; architectures use it.
type Builder struct {
	Dir        string
	Config     *Config
	Checkpoint *safetensors.Checkpoint
	// OutType is the stored type of quantizable matrices.
	OutType  ggml.Type
	FileType uint32
	Model    *formats.Model
	Warnings []string
	// VocabOnly: no tensors are read or written; architectures check the
	// config only.
	VocabOnly bool

	pre     string
	encoder HFEncoder
	dups    []string // keys added twice: a bug in an architecture
}

// bpeVocab is convert_hf_to_gguf.py's _set_vocab_gpt2 vocabulary, with the
// pre-tokenizer detected by chkhsh (or named by Options.Pre). found is false
// without tokenizer.json.
func (b *Builder) bpeVocab(vocabSize int) (*Vocab, bool, error) {
	if _, err := os.Stat(filepath.Join(b.Dir, "tokenizer.json")); errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	pre, err := detectPre(b.Dir, b.pre, b.encoder)
	if err != nil {
		return nil, true, err
	}
	return BPEVocab(b.Dir, vocabSize, pre)
}

// Convert reads the Hugging Face checkpoint in dir and returns the GGUF
// model graph. Nothing is written; the caller streams Result.Model with
// gguf.WriteFile and then calls Result.Close.
func Convert(dir string, opt Options) (*Result, error) {
	cfgPath := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w: missing (is %s a Hugging Face model directory?)", cfgPath, ErrConfig, dir)
		}
		return nil, err
	}
	cfg, hfArch, arch, err := parseConfigArch(data, cfgPath)
	if err != nil {
		return nil, err
	}
	outName := strings.ToLower(opt.OutType)
	if outName == "" {
		outName = "auto"
	}
	if _, ok := outTypes[outName]; !ok && outName != "auto" {
		return nil, fmt.Errorf("unknown output type %q (want one of %s)", opt.OutType, strings.Join(OutTypes, ", "))
	}
	var ckpt *safetensors.Checkpoint
	if opt.VocabOnly {
		ckpt, err = safetensors.NewCheckpoint(dir, nil)
	} else {
		ckpt, err = openCheckpoint(dir)
	}
	if err != nil {
		return nil, err
	}
	res := &Result{HFArch: hfArch, ckpt: ckpt}
	ok := false
	defer func() {
		if !ok {
			res.Close()
		}
	}()
	for _, t := range ckpt.Tensors {
		res.InputBytes += int64(t.Size())
	}
	if outName == "auto" {
		outName = guessOutType(ckpt)
	}
	res.OutType = outName
	b := &Builder{
		Dir: dir, Config: cfg, Checkpoint: ckpt,
		OutType: outTypes[outName].typ, FileType: outTypes[outName].fileType,
		Model:     &formats.Model{Arch: arch.GGUFArch()},
		VocabOnly: opt.VocabOnly,
		pre:       opt.Pre, encoder: opt.Encoder,
	}
	if err := arch.Check(b); err != nil {
		return nil, err
	}
	// gguf-py writes general.architecture when the writer is created, so
	// keys added while generating extra tensors (Phi-3's attn_factor) follow
	// it.
	b.Add("general.architecture", arch.GGUFArch())
	if !opt.VocabOnly {
		if err := arch.ExtraTensors(b); err != nil {
			return nil, err
		}
	}
	for _, t := range ckpt.Tensors {
		if skipTensor(t.Name) {
			continue
		}
		if err := arch.MapTensor(b, t); err != nil {
			return nil, err
		}
	}
	// Metadata comes after the tensors are known (the size label needs the
	// parameter count), in convert_hf_to_gguf.py's order.
	b.Add("general.type", "model")
	name := generalName(opt.Name, dir)
	b.AddString("general.name", name)
	if label := b.sizeLabel(); label != "" {
		b.Add("general.size_label", label)
	}
	if err := arch.Params(b); err != nil {
		return nil, err
	}
	if err := arch.Vocab(b); err != nil {
		return nil, err
	}
	b.Add("general.quantization_version", uint32(QuantizationVersion))
	if err := b.dupErr(); err != nil {
		return nil, err
	}
	res.Model = b.Model
	res.Warnings = b.Warnings
	ok = true
	return res, nil
}

// openCheckpoint opens the safetensors weights in dir, or, as
// convert_hf_to_gguf.py does when there are none, pytorch_model*.bin.
func openCheckpoint(dir string) (*safetensors.Checkpoint, error) {
	hasSafetensors := false
	if _, err := os.Stat(filepath.Join(dir, safetensors.IndexName)); err == nil {
		hasSafetensors = true
	} else if m, _ := filepath.Glob(filepath.Join(dir, "model*.safetensors")); len(m) > 0 {
		hasSafetensors = true
	}
	if !hasSafetensors && pytorch.HasCheckpoint(dir) {
		return pytorch.OpenDir(dir)
	}
	return safetensors.OpenDir(dir)
}

// guessOutType implements --outtype auto: the dtype of the first tensor
// with two or more dimensions decides.
func guessOutType(c *safetensors.Checkpoint) string {
	for _, t := range c.Tensors {
		if len(t.Shape) >= 2 {
			if t.DType == safetensors.BF16 {
				return "bf16"
			}
			return "f16"
		}
	}
	return "f16"
}

// skipTensor is convert_hf_to_gguf.py's list of tensors nobody needs.
func skipTensor(name string) bool {
	for _, s := range []string{".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// Add appends a metadata key; a key added twice is an error reported at
// the end (as gguf-py's "Duplicated key name").
func (b *Builder) Add(key string, v any) {
	if _, dup := b.Model.KV.Get(key); dup {
		b.dups = append(b.dups, key)
		return
	}
	b.Model.KV = append(b.Model.KV, formats.KV{Key: key, Value: v})
}

// Set writes a key in place when it exists (keeping its position), else
// appends it: newer gguf-py overwrites a duplicated key with a warning, and
// current llama.cpp converters (Gemma 3) rely on that.
func (b *Builder) Set(key string, v any) {
	for i := range b.Model.KV {
		if b.Model.KV[i].Key == key {
			b.Model.KV[i].Value = v
			return
		}
	}
	b.Model.KV = append(b.Model.KV, formats.KV{Key: key, Value: v})
}

// AddString adds a string key unless it is empty (gguf-py skips those).
func (b *Builder) AddString(key, v string) {
	if v != "" {
		b.Add(key, v)
	}
}

func (b *Builder) dupErr() error {
	if len(b.dups) > 0 {
		return fmt.Errorf("internal error: metadata keys written twice: %s", strings.Join(b.dups, ", "))
	}
	return nil
}

// Warn records a warning.
func (b *Builder) Warn(format string, args ...any) {
	b.Warnings = append(b.Warnings, fmt.Sprintf(format, args...))
}

// AddTensor adds an output tensor read from a checkpoint tensor, choosing
// its stored type as convert_hf_to_gguf.py does (see AddSource).
func (b *Builder) AddTensor(name string, t *safetensors.Tensor, transforms ...formats.Transform) error {
	if err := checkDType(t); err != nil {
		return err
	}
	src, err := t.Source()
	if err != nil {
		return err
	}
	return b.AddSource(name, t.Shape, src, transforms...)
}

func checkDType(t *safetensors.Tensor) error {
	switch t.DType {
	case safetensors.F32, safetensors.F16, safetensors.BF16:
		return nil
	}
	return fmt.Errorf("%s: tensor %s has dtype %s; only F32, F16 and BF16 weights can be converted", t.File.Path, t.Name, t.DType)
}

// AddSource adds an output tensor of the given torch-order shape. 1-D
// tensors, norms, the MoE router (ffn_gate_inp) and anything not named
// *.weight stay F32; the rest take the output type, with F16 instead of
// Q8_0 when a row is not a whole number of blocks.
func (b *Builder) AddSource(name string, torchShape []uint64, src formats.Source, transforms ...formats.Transform) error {
	if len(torchShape) > 4 {
		return fmt.Errorf("tensor %s has %d dimensions; GGUF allows at most 4", name, len(torchShape))
	}
	shape := make([]uint64, 0, 4)
	for i := len(torchShape) - 1; i >= 0; i-- {
		shape = append(shape, torchShape[i])
	}
	if len(shape) == 0 {
		shape = append(shape, 1)
	}
	typ := b.OutType
	if len(torchShape) <= 1 || strings.HasSuffix(name, "_norm.weight") || !strings.HasSuffix(name, ".weight") ||
		strings.HasSuffix(name, ".ffn_gate_inp.weight") {
		typ = ggml.TypeF32
	}
	if typ.Quantized() && shape[0]%uint64(typ.BlockSize()) != 0 {
		b.Warn("tensor %s: rows of %d are not a multiple of %d, falling back to F16", name, shape[0], typ.BlockSize())
		typ = ggml.TypeF16
	}
	b.Model.Tensors = append(b.Model.Tensors, &formats.Tensor{
		Name: name, Shape: shape, Type: typ, Source: src, Transforms: transforms,
	})
	return nil
}

// paramCount is gguf-py's total parameter count: every element of every
// output tensor.
func (b *Builder) paramCount() uint64 {
	var n uint64
	for _, t := range b.Model.Tensors {
		n += t.Elements()
	}
	return n
}

// sizeLabel is gguf-py's size_label: the parameter count, or for a
// mixture of experts "Nx" and the parameters one token's path would hold
// with a single expert (shared tensors plus one slice of each *_exps).
func (b *Builder) sizeLabel() string {
	var total, shared, perExpert, expertSum, nExpTensors uint64
	for _, t := range b.Model.Tensors {
		n := t.Elements()
		total += n
		if strings.Contains(t.Name, "_exps.") && len(t.Shape) >= 3 {
			perExpert += n / t.Shape[2]
			expertSum += t.Shape[2]
			nExpTensors++
		} else {
			shared += n
		}
	}
	if total == 0 {
		return ""
	}
	if nExpTensors > 0 {
		return strconv.FormatUint(expertSum/nExpTensors, 10) + "x" + SizeLabel(shared+perExpert)
	}
	return SizeLabel(total)
}

// SizeLabel formats a parameter count as gguf-py's size_label does: at
// least two significant digits before the suffix (K, M, B, T).
func SizeLabel(n uint64) string {
	x := float64(n)
	var scaled float64
	var suffix string
	switch {
	case x > 1e12:
		scaled, suffix = x*1e-12, "T"
	case x > 1e9:
		scaled, suffix = x*1e-9, "B"
	case x > 1e6:
		scaled, suffix = x*1e-6, "M"
	default:
		scaled, suffix = x*1e-3, "K"
	}
	intDigits := strings.TrimLeft(strconv.FormatFloat(math.RoundToEven(scaled), 'f', 0, 64), "0")
	fix := max(2-len(intDigits), 0)
	return strconv.FormatFloat(scaled, 'f', fix, 64) + suffix
}

var versionLike = regexp.MustCompile(`^(v\d+(?:\.\d+)*|\d.*)$`)

// titleFromID is gguf-py's Metadata.id_to_title: dashes become spaces and
// all-lowercase words are title-cased unless they look like versions or
// start with a digit.
// generalName is general.name: the name given, else the model directory's
// name as a title, as convert_hf_to_gguf.py derives it.
func generalName(given, dir string) string {
	if given != "" {
		return given
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return titleFromID(filepath.Base(abs))
}

func titleFromID(id string) string {
	words := strings.Fields(strings.ReplaceAll(strings.TrimSpace(id), "-", " "))
	for i, w := range words {
		if isLower(w) && !versionLike.MatchString(w) {
			words[i] = pyTitle(w)
		}
	}
	return strings.Join(words, " ")
}

// isLower is Python's str.islower: some cased letter, none upper case.
func isLower(s string) bool {
	cased := false
	for _, r := range s {
		if unicode.IsUpper(r) || unicode.IsTitle(r) {
			return false
		}
		if unicode.IsLower(r) {
			cased = true
		}
	}
	return cased
}

// pyTitle is Python's str.title: the first letter of each run of letters
// upper case, the rest lower case.
func pyTitle(s string) string {
	var sb strings.Builder
	prevLetter := false
	for _, r := range s {
		if unicode.IsLetter(r) {
			if prevLetter {
				sb.WriteRune(unicode.ToLower(r))
			} else {
				sb.WriteRune(unicode.ToTitle(r))
			}
			prevLetter = true
		} else {
			sb.WriteRune(r)
			prevLetter = false
		}
	}
	return sb.String()
}
