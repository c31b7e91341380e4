package quant

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
)

// QuantizationVersion is the value llama-quantize writes to
// general.quantization_version (GGML_QNT_VERSION).
const QuantizationVersion = 2

// TensorTypeOverride forces the type of every tensor whose name matches
// Regex (searched anywhere in the name, Go RE2 syntax). When several match,
// the last one wins.
type TensorTypeOverride struct {
	Regex string
	Type  ggml.Type
}

// ParseTensorTypeOverride parses "REGEX=TYPE" as given to --tensor-type.
func ParseTensorTypeOverride(s string) (TensorTypeOverride, error) {
	i := strings.LastIndexByte(s, '=')
	if i <= 0 || i == len(s)-1 {
		return TensorTypeOverride{}, fmt.Errorf("tensor type override %q: want REGEX=TYPE", s)
	}
	t, err := ggml.ParseType(s[i+1:])
	if err != nil {
		return TensorTypeOverride{}, fmt.Errorf("tensor type override %q: %w", s, err)
	}
	if _, err := regexp.Compile(s[:i]); err != nil {
		return TensorTypeOverride{}, fmt.Errorf("tensor type override %q: %w", s, err)
	}
	return TensorTypeOverride{Regex: s[:i], Type: t}, nil
}

// Options says how Plan quantizes a model. The zero value of every field
// but Preset means what llama-quantize does by default.
type Options struct {
	// Preset is the quantization mix (from ParsePreset).
	Preset Preset
	// Pure gives every quantizable tensor the preset's default type,
	// without the mix rules (llama-quantize --pure).
	Pure bool
	// OutputTensorType and TokenEmbeddingType, when set, force the type of
	// output.weight and token_embd.weight.
	OutputTensorType   *ggml.Type
	TokenEmbeddingType *ggml.Type
	// LeaveOutputTensor keeps output.weight as it is in the input.
	LeaveOutputTensor bool
	// TensorTypes are per-tensor overrides applied after the mix rules.
	TensorTypes []TensorTypeOverride
	// AllowRequantize permits quantizing tensors that already are.
	AllowRequantize bool
	// Imatrix maps tensor names to importance weights (ne0 × experts
	// values). With one, the importance-weighted encoders run.
	Imatrix map[string][]float32
	// ImatrixFile, ImatrixDataset and ImatrixChunks are recorded in the
	// quantize.imatrix.* metadata as llama-quantize does.
	ImatrixFile    string
	ImatrixDataset string
	ImatrixChunks  int
	// KVOverrides are llama-quantize's --override-kv values, set in order
	// (each replaces its key and moves it to the end, as gguf_set_val does).
	KVOverrides []formats.KV
	// Threads bounds the concurrent row chunks encoded across all tensors;
	// 0 means every CPU. The output does not depend on it.
	Threads int
	// Context, when set, stops encoding early once it is cancelled.
	Context context.Context
	// OnEncoded, if set, is called (from any goroutine) after each tensor
	// that was re-encoded, with the time its conversion took.
	OnEncoded func(name string, to ggml.Type, elapsed time.Duration)
}

// Decision is what Plan decided for one tensor.
type Decision struct {
	Name  string
	Shape []uint64
	// From is the tensor's type in the input, To in the output.
	From, To ggml.Type
	// Quantize is true when the data is re-encoded; otherwise it is copied.
	Quantize bool
	// Fallback: the mix wanted a type whose block does not divide the row.
	Fallback bool
	// Imatrix: importance weights were used for this tensor.
	Imatrix bool
	// Reason is a short human-readable explanation of the choice.
	Reason string
	// BytesIn and BytesOut are the tensor's data sizes in and out.
	BytesIn, BytesOut uint64
	// Elements is the number of values in the tensor.
	Elements uint64
}

// Plan decides the type of every tensor of m as llama-quantize (b4748)
// would, and returns the output graph: the metadata copied with
// general.quantization_version and general.file_type set, the tensors in
// llama-quantize's order, each with a source that yields its final bytes.
// Nothing is read or encoded until those sources are read (e.g. by
// gguf.WriteFile), so Plan alone is a dry run. m is not modified.
func Plan(m *formats.Model, opts Options) (*formats.Model, []Decision, error) {
	p := opts.Preset
	if p.Name == "" {
		return nil, nil, errors.New("quantize: no preset given")
	}
	if p.Alias != "" {
		p = p.resolve()
	}
	if p.NeedsImatrix && len(opts.Imatrix) == 0 {
		return nil, nil, fmt.Errorf("quantize: %s without an importance matrix gives garbage, so llama-quantize refuses it "+
			"(IQ1_S, IQ1_M, IQ2_S, IQ2_XXS, IQ2_XS and Q2_K_S need one); pass an imatrix or choose another type", p.Name)
	}
	for name, w := range opts.Imatrix {
		for _, v := range w {
			if !finite(v) {
				return nil, nil, fmt.Errorf("quantize: importance matrix for %s contains non-finite value %v", name, v)
			}
		}
	}
	overrides := make([]*regexp.Regexp, len(opts.TensorTypes))
	for i, o := range opts.TensorTypes {
		re, err := regexp.Compile(o.Regex)
		if err != nil {
			return nil, nil, fmt.Errorf("quantize: --tensor-type %s=%s: %w", o.Regex, o.Type, err)
		}
		overrides[i] = re
	}

	// llama-quantize visits tensors in its loader's map order.
	order := slices.Clone(m.Tensors)
	slices.SortStableFunc(order, func(a, b *formats.Tensor) int {
		switch {
		case lessTensorName(a.Name, b.Name):
			return -1
		case lessTensorName(b.Name, a.Name):
			return 1
		}
		return 0
	})
	for i := 1; i < len(order); i++ {
		if order[i].Name == order[i-1].Name {
			return nil, nil, fmt.Errorf("quantize: tensor %s appears twice", order[i].Name)
		}
	}

	runsMix := !p.Copy && !opts.Pure && p.Default.Quantized()
	info, infoErr := readModelInfo(m)
	if infoErr != nil && runsMix {
		return nil, nil, fmt.Errorf("quantize: %w", infoErr)
	}
	mx := &mixer{
		ftype:       p.FileType,
		info:        info,
		hasImatrix:  len(opts.Imatrix) > 0,
		outputType:  opts.OutputTensorType,
		tokEmbdType: opts.TokenEmbeddingType,
	}
	for _, t := range order {
		if strings.Contains(t.Name, "attn_v.weight") || strings.Contains(t.Name, "attn_qkv.weight") ||
			strings.Contains(t.Name, "attn_kv_b.weight") {
			mx.nAttentionWV++
		} else if t.Name == "output.weight" {
			mx.hasOutput = true
		}
	}
	if info != nil {
		mx.nFFNDown, mx.nFFNGate, mx.nFFNUp = info.nLayer, info.nLayer, info.nLayer
		if mx.nAttentionWV != 0 {
			nAttn := info.nLayer
			for _, kv := range info.nHeadKV {
				if kv == 0 {
					nAttn--
				}
			}
			if mx.nAttentionWV != nAttn {
				return nil, nil, fmt.Errorf("quantize: the model has %d attn_v tensors but %d attention layers", mx.nAttentionWV, nAttn)
			}
		}
	}

	ftype := p.FileType
	if p.Copy {
		ftype = guessFileType(m, order)
	}
	out := &formats.Model{Arch: m.Arch, KV: slices.Clone(m.KV)}
	// gguf_set_val_* removes a key and appends it, so these move to the end.
	setLast := func(key string, v any) {
		out.KV.Delete(key)
		out.KV = append(out.KV, formats.KV{Key: key, Value: v})
	}
	setLast("general.quantization_version", uint32(QuantizationVersion))
	setLast("general.file_type", uint32(ftype))
	for _, k := range []string{"split.no", "split.count", "split.tensors.count"} {
		out.KV.Delete(k)
	}
	// llama-quantize applies --override-kv in order, before the imatrix keys.
	for _, kv := range opts.KVOverrides {
		setLast(kv.Key, kv.Value)
	}
	if len(opts.Imatrix) > 0 {
		file := opts.ImatrixFile
		if len(file) > 127 {
			file = file[:127]
		}
		setLast("quantize.imatrix.file", file)
		if opts.ImatrixDataset != "" {
			ds := opts.ImatrixDataset
			if len(ds) > 127 {
				ds = ds[:127]
			}
			setLast("quantize.imatrix.dataset", ds)
		}
		setLast("quantize.imatrix.entries_count", int32(len(opts.Imatrix)))
		if opts.ImatrixChunks > 0 {
			setLast("quantize.imatrix.chunks_count", int32(opts.ImatrixChunks))
		}
	}

	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	pool := &workPool{slots: make(chan struct{}, threads), ctx: ctx}

	decisions := make([]Decision, 0, len(order))
	for _, t := range order {
		d, imatrix, err := decide(t, p, opts, mx, overrides)
		if err != nil {
			return nil, nil, fmt.Errorf("quantize: %w", err)
		}
		decisions = append(decisions, d)
		nt := &formats.Tensor{Name: t.Name, Shape: slices.Clone(t.Shape), Type: d.To}
		if d.Quantize {
			enc := &encodedSource{in: t, to: d.To, imatrix: imatrix, pool: pool, onDone: opts.OnEncoded}
			nt.Source = enc
			if rs := newRowEncodedSource(enc); rs != nil {
				nt.Source = rs
			}
		} else {
			nt.Source = &checkedSource{in: t}
		}
		out.Tensors = append(out.Tensors, nt)
	}
	return out, decisions, nil
}

// decide makes the per-tensor choices of llama_model_quantize_impl's loop.
func decide(t *formats.Tensor, p Preset, opts Options, mx *mixer, overrides []*regexp.Regexp) (Decision, []float32, error) {
	d := Decision{Name: t.Name, Shape: slices.Clone(t.Shape), From: t.Type, To: t.Type, Elements: t.Elements()}
	if len(t.Shape) == 0 {
		return d, nil, fmt.Errorf("tensor %s has no shape", t.Name)
	}
	in, err := t.Size()
	if err != nil {
		return d, nil, err
	}
	d.BytesIn, d.BytesOut = in, in

	reason := neverQuantized(t.Name, t.Shape)
	switch {
	case reason != "":
	case opts.LeaveOutputTensor && t.Name == "output.weight":
		reason = "--leave-output-tensor"
	case p.Copy:
		reason = "COPY"
	}
	if reason != "" {
		d.Reason = "kept: " + reason
		return d, nil, nil
	}

	newType := p.Default
	if !opts.Pure && p.Default.Quantized() {
		newType, reason, d.Fallback, err = mx.tensorType(t.Name, t.Shape, newType)
		if err != nil {
			return d, nil, err
		}
	} else if opts.Pure {
		reason = "--pure"
	}
	if reason == "" {
		reason = p.Name + " default"
	}
	for i, re := range overrides {
		if re.MatchString(t.Name) {
			newType, reason, d.Fallback = opts.TensorTypes[i].Type, "--tensor-type "+opts.TensorTypes[i].Regex, false
		}
	}
	if opts.TokenEmbeddingType != nil && t.Name == "token_embd.weight" {
		newType, reason = *opts.TokenEmbeddingType, "--token-embedding-type"
	}
	if opts.OutputTensorType != nil && t.Name == "output.weight" {
		newType, reason = *opts.OutputTensorType, "--output-tensor-type"
	}
	if newType == t.Type {
		d.Reason = "kept: already " + newType.String()
		return d, nil, nil
	}

	d.To, d.Quantize, d.Reason = newType, true, reason
	if bs := uint64(newType.BlockSize()); bs == 0 || t.Shape[0]%bs != 0 {
		return d, nil, fmt.Errorf("tensor %s: row of %d elements is not a multiple of %s's block of %d (%s)",
			t.Name, t.Shape[0], newType, bs, reason)
	}
	if newType.Quantized() && !CanQuantize(newType) {
		return d, nil, fmt.Errorf("tensor %s: llqt cannot encode %s yet (%s)", t.Name, newType, reason)
	}
	if !newType.Quantized() && newType != ggml.TypeF32 && newType != ggml.TypeF16 && newType != ggml.TypeBF16 {
		return d, nil, fmt.Errorf("tensor %s: %s is not a type to quantize to", t.Name, newType)
	}
	if d.BytesOut, err = (&formats.Tensor{Name: t.Name, Shape: t.Shape, Type: newType}).Size(); err != nil {
		return d, nil, err
	}

	var imatrix []float32
	if opts.Imatrix != nil {
		if w, ok := opts.Imatrix[t.Name]; ok {
			experts := uint64(1)
			if len(t.Shape) > 2 {
				experts = t.Shape[2]
			}
			if uint64(len(w)) == t.Shape[0]*experts {
				imatrix, d.Imatrix = w, true
			} else if t.Name != "token_embd.weight" {
				return d, nil, fmt.Errorf("tensor %s: imatrix size %d is different from tensor size %d",
					t.Name, len(w), t.Shape[0]*experts)
			}
		}
	}
	if imatrix == nil && needsImatrixFor(newType, p.FileType, t.Name) {
		return d, nil, fmt.Errorf("missing importance matrix for tensor %s in a very low-bit quantization (%s): "+
			"the result would be garbage, so llama-quantize bails out", t.Name, newType)
	}
	switch {
	case t.Type == ggml.TypeF32, t.Type == ggml.TypeF16, t.Type == ggml.TypeBF16:
	case t.Type.Quantized():
		if !opts.AllowRequantize {
			return d, nil, fmt.Errorf("tensor %s is already quantized (%s): requantizing from type %s is disabled "+
				"because it loses quality; start from the F32/F16/BF16 model, or pass --allow-requantize", t.Name, t.Type, t.Type)
		}
		if !CanDequantize(t.Type) {
			return d, nil, fmt.Errorf("tensor %s: cannot dequantize %s", t.Name, t.Type)
		}
	default:
		return d, nil, fmt.Errorf("tensor %s: cannot dequantize/convert tensor type %s", t.Name, t.Type)
	}
	return d, imatrix, nil
}

// readInput yields a tensor's bytes in its declared type: the source bytes
// with its transforms applied and re-encoded when needed, just as a file
// holding the tensor would contain them. Every row is then checked for NaN
// and infinity (llama.cpp's loader refuses such files).
func readInput(t *formats.Tensor) ([]byte, error) {
	raw, err := formats.Materialize(t, Codec{})
	if err != nil {
		return nil, err
	}
	if t.Type.Known() && (t.Type.Quantized() || t.Type == ggml.TypeF32 || t.Type == ggml.TypeF16 ||
		t.Type == ggml.TypeBF16 || t.Type == ggml.TypeF64) {
		if err := ValidateRows(t.Type, raw, int(t.Shape[0])); err != nil {
			return nil, fmt.Errorf("tensor %s has invalid input data: %w", t.Name, err)
		}
	}
	return raw, nil
}

// checkedSource copies a tensor through unchanged.
type checkedSource struct{ in *formats.Tensor }

func (s *checkedSource) Type() ggml.Type          { return s.in.Type }
func (s *checkedSource) ReadRaw() ([]byte, error) { return readInput(s.in) }

// workPool bounds the row chunks being encoded at once across all tensors.
type workPool struct {
	slots chan struct{}
	ctx   context.Context
}

// chunkElements is the least work handed to one goroutine; smaller tensors
// are encoded in one piece. It does not affect the bytes.
const chunkElements = 1 << 16

// encodedSource converts a tensor to another type when read.
type encodedSource struct {
	in      *formats.Tensor
	to      ggml.Type
	imatrix []float32
	pool    *workPool
	onDone  func(string, ggml.Type, time.Duration)
}

func (s *encodedSource) Type() ggml.Type { return s.to }

func (s *encodedSource) ReadRaw() ([]byte, error) {
	start := time.Now()
	t := s.in
	raw, err := readInput(t)
	if err != nil {
		return nil, err
	}
	n := int(t.Elements())
	ne0 := int(t.Shape[0])
	f, err := Dequantize(t.Type, raw, n)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	raw = nil
	var out []byte
	if !s.to.Quantized() {
		out, err = formats.PlainCodec{}.Encode(s.to, f, ne0)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
	} else if out, err = s.quantize(f, ne0); err != nil {
		return nil, err
	}
	if err := ValidateRows(s.to, out, ne0); err != nil {
		return nil, fmt.Errorf("tensor %s: quantized data validation failed: %w", t.Name, err)
	}
	if s.onDone != nil {
		s.onDone(t.Name, s.to, time.Since(start))
	}
	return out, nil
}

// quantize encodes f in chunks of whole rows on the shared pool. Each
// expert's matrix (ne0 × ne1) uses its own slice of the importance weights.
func (s *encodedSource) quantize(f []float32, ne0 int) ([]byte, error) {
	t := s.in
	rs, err := RowSize(s.to, ne0)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	nrows := len(f) / ne0
	rowsPerMatrix := nrows
	if len(t.Shape) > 1 {
		rowsPerMatrix = int(t.Shape[1])
	}
	if rowsPerMatrix == 0 {
		return []byte{}, nil
	}
	chunkRows := max(1, chunkElements/ne0)
	out := make([]byte, nrows*rs)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		errRow   = -1
	)
	fail := func(row int, err error) {
		mu.Lock()
		if errRow < 0 || row < errRow {
			firstErr, errRow = err, row
		}
		mu.Unlock()
	}
	ctx := s.pool.ctx
loop:
	for r0 := 0; r0 < nrows; {
		matrix := r0 / rowsPerMatrix
		end := min(r0+chunkRows, (matrix+1)*rowsPerMatrix, nrows)
		var qw []float32
		if s.imatrix != nil {
			qw = s.imatrix[matrix*ne0 : (matrix+1)*ne0]
		}
		select {
		case s.pool.slots <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Add(1)
		go func(r0, end int, qw []float32) {
			defer wg.Done()
			defer func() { <-s.pool.slots }()
			if err := QuantizeRows(s.to, out[r0*rs:end*rs], f[r0*ne0:end*ne0], ne0, qw); err != nil {
				fail(r0, fmt.Errorf("tensor %s, rows %d–%d: %w", t.Name, r0, end-1, err))
			}
		}(r0, end, qw)
		r0 = end
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
