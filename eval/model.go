package eval

import (
	"fmt"
	"runtime"

	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/mmap"
)

// Options configure how a model is run.
type Options struct {
	// Threads used by matrix products and attention; 0 means all CPUs.
	Threads int
	// KVF32 keeps the KV cache in F32. The default is F16, as in
	// llama.cpp. (A bool rather than a ggml.Type field, whose zero value
	// would be F32's id.)
	KVF32 bool
	// UBatch is the most tokens one forward pass evaluates (llama.cpp's
	// n_ubatch); 0 means 512. It changes only the speed and memory.
	UBatch int
	// ExactGELU computes GELU in float32 instead of through ggml's
	// half-precision table (llama.cpp's CPU arithmetic, the default): for
	// comparisons with float32 references.
	ExactGELU bool
}

// Weight is one weight matrix in place in the mapped file: Rows rows of
// Cols elements of Type (ggml shape [Cols, Rows]).
type Weight struct {
	Name string
	Type ggml.Type
	Data []byte
	Rows int
	Cols int
	// lora holds run-time adapter updates (see ApplyLoRA in lora.go).
	lora []loraFactor
}

// RowBytes is the size of one row in bytes.
func (w *Weight) RowBytes() int {
	n, _ := w.Type.RowSize(uint64(w.Cols))
	return int(n)
}

// Layer holds one transformer block's weights. The optional fields are
// nil (or zero) where the architecture has no such step.
type Layer struct {
	AttnNorm       []float32
	Wq, Wk, Wv, Wo *Weight
	Bq, Bk, Bv     []float32 // projection biases (Qwen2)
	// QNorm and KNorm are RMS norm weights applied to each query and key
	// head before RoPE (Qwen3, Gemma 3).
	QNorm, KNorm []float32
	// PostAttnNorm and PostFFNNorm normalize the sub-blocks' outputs before
	// they are added to the residual stream (Gemma 2 and 3).
	PostAttnNorm []float32
	FFNNorm      []float32
	WGate        *Weight // dense feed-forward; nil when Experts is set
	WUp          *Weight
	WDown        *Weight
	Experts      *Experts // mixture of experts (Mixtral)
	PostFFNNorm  []float32
	// Window is the sliding-window size: a key at distance Window or more
	// from the query is masked. 0: the layer attends to every position.
	Window int
	// Rope indexes the model's RoPE variants (Gemma 3's local and global
	// layers rotate differently).
	Rope int
}

// Model is a loaded model. Its weights point into the mmap of the file,
// which stays open until Close.
type Model struct {
	Hparams Hparams
	File    *gguf.File

	TokEmbd    *Weight
	OutputNorm []float32
	Output     *Weight // token_embd when the output is tied
	Layers     []Layer

	style blockStyle   // how the block differs from Llama's (arch.go)
	ropes []ropeParams // the RoPE variants the layers use (Layer.Rope)

	// weights are the weight matrices by name (ReplaceWeight).
	weights map[string]*Weight

	opt     Options
	threads int
	kvType  ggml.Type
	tok     tokenizerHolder
}

// Load opens a GGUF model by mmap and checks its tensors against its
// hyperparameters.
func Load(path string, opt Options) (*Model, error) {
	return mmap.OpenThen(path, gguf.OpenModel, func(f *gguf.File) (*Model, error) {
		m, err := newModel(f, opt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return m, nil
	})
}

func newModel(f *gguf.File, opt Options) (*Model, error) {
	hp, err := HparamsFromKV(f.KV)
	if err != nil {
		return nil, err
	}
	m := &Model{Hparams: hp, File: f, opt: opt}
	m.threads = opt.Threads
	if m.threads <= 0 {
		m.threads = runtime.NumCPU()
	}
	m.kvType = ggml.TypeF16
	if opt.KVF32 {
		m.kvType = ggml.TypeF32
	}

	embd, err := m.matrix("token_embd.weight", hp.NEmbd, -1)
	if err != nil {
		return nil, err
	}
	if hp.NVocab == 0 {
		m.Hparams.NVocab = embd.Rows
		hp.NVocab = embd.Rows
	} else if embd.Rows != hp.NVocab {
		return nil, fmt.Errorf("tensor token_embd.weight has %d rows, vocab_size is %d", embd.Rows, hp.NVocab)
	}
	m.TokEmbd = embd
	if m.OutputNorm, err = m.vector("output_norm.weight", hp.NEmbd); err != nil {
		return nil, err
	}
	if _, ok := f.Tensor("output.weight"); ok {
		if m.Output, err = m.matrix("output.weight", hp.NEmbd, hp.NVocab); err != nil {
			return nil, err
		}
	} else {
		m.Output = embd
	}
	m.ropes = []ropeParams{{base: hp.RopeFreqBase, scale: hp.RopeFreqScale}}
	// block_count comes from the file: check it against the tensors (at
	// least one per layer) before it sizes an allocation.
	if hp.NLayer > len(f.Tensors) {
		return nil, fmt.Errorf("%s.block_count %d exceeds the file's %d tensors", hp.Arch, hp.NLayer, len(f.Tensors))
	}
	m.Layers = make([]Layer, hp.NLayer)
	if err := archs[hp.Arch](m); err != nil {
		return nil, err
	}
	return m, nil
}

// matrix finds a 2-D weight of shape [cols, rows] (rows < 0: any).
func (m *Model) matrix(name string, cols, rows int) (*Weight, error) {
	ti, ok := m.File.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("missing tensor %s", name)
	}
	if len(ti.Shape) != 2 || ti.Shape[0] != uint64(cols) || (rows >= 0 && ti.Shape[1] != uint64(rows)) {
		want := fmt.Sprintf("[%d %d]", cols, rows)
		if rows < 0 {
			want = fmt.Sprintf("[%d n_vocab]", cols)
		}
		return nil, fmt.Errorf("tensor %s has shape %v, hyperparameters need %s", name, ti.Shape, want)
	}
	if !matmulSupported(ti.Type) {
		return nil, fmt.Errorf("tensor %s: type %s is not supported by the engine", name, ti.Type)
	}
	data, err := m.File.Data(ti)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	w := &Weight{Name: name, Type: ti.Type, Data: data, Rows: int(ti.Shape[1]), Cols: int(ti.Shape[0])}
	if m.weights == nil {
		m.weights = map[string]*Weight{}
	}
	m.weights[name] = w
	return w, nil
}

// vector reads a 1-D tensor of n elements as float32 (norm weights are
// small; copying them is cheaper than converting on every use).
func (m *Model) vector(name string, n int) ([]float32, error) {
	ti, ok := m.File.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("missing tensor %s", name)
	}
	if len(ti.Shape) != 1 || ti.Shape[0] != uint64(n) {
		return nil, fmt.Errorf("tensor %s has shape %v, hyperparameters need [%d]", name, ti.Shape, n)
	}
	data, err := m.File.Data(ti)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	out := make([]float32, n)
	if err := dequantizeRow(out, ti.Type, data); err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	return out, nil
}

// NVocab is the vocabulary size.
func (m *Model) NVocab() int { return m.Hparams.NVocab }

// Threads is the number of worker threads in use.
func (m *Model) Threads() int { return m.threads }

// KVType is the KV cache element type.
func (m *Model) KVType() ggml.Type { return m.kvType }

// Close unmaps the file. The model and its contexts must not be used after.
func (m *Model) Close() error { return m.File.Close() }

// NParams is the number of weight elements in the file (llama-bench's
// model_n_params).
func (m *Model) NParams() uint64 {
	var n uint64
	for i := range m.File.Tensors {
		n += m.File.Tensors[i].Elements()
	}
	return n
}

// SizeBytes is the bytes of tensor data in the file (llama-bench's
// model_size).
func (m *Model) SizeBytes() uint64 {
	var n uint64
	for i := range m.File.Tensors {
		n += m.File.Tensors[i].Size
	}
	return n
}

// BytesPerToken is the weight bytes a single-token decode reads: every
// matrix once, plus one embedding row (the output matrix replaces the
// embedding table when tied).
func (m *Model) BytesPerToken() uint64 {
	var n uint64
	for _, l := range m.Layers {
		ws := []*Weight{l.Wq, l.Wk, l.Wv, l.Wo, l.WGate, l.WUp, l.WDown}
		if e := l.Experts; e != nil {
			// Each token reads the router and NUsed experts.
			ws = append(ws, e.Router)
			for range e.NUsed {
				ws = append(ws, e.Gate[0], e.Up[0], e.Down[0])
			}
		}
		for _, w := range ws {
			if w != nil {
				n += uint64(len(w.Data))
			}
		}
		for _, v := range [][]float32{l.AttnNorm, l.FFNNorm, l.Bq, l.Bk, l.Bv, l.QNorm, l.KNorm, l.PostAttnNorm, l.PostFFNNorm} {
			n += uint64(4 * len(v))
		}
	}
	n += uint64(len(m.Output.Data)) + uint64(4*len(m.OutputNorm))
	n += uint64(m.TokEmbd.RowBytes())
	return n
}
