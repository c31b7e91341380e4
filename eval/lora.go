package eval

import (
	"fmt"

	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/kernels"
)

// loraFactor is one adapter's update of a weight: the product W·x gains
// Scale·B·(A·x), as llama.cpp's llm_build_lora_mm adds it at run time.
type loraFactor struct {
	A     []float32 // Rank rows of Cols values
	B     []float32 // Rows rows of Rank values
	Rank  int
	Scale float32
}

// ApplyLoRA makes every later forward pass add the adapter's update,
// scaled by userScale (llama.cpp's --lora is 1, --lora-scaled s is s), to
// the products of the weights it adapts. Several adapters add up. The
// weights in the file are not changed.
func (m *Model) ApplyLoRA(a *gguf.Adapter, userScale float32) error {
	byName := map[string]*Weight{}
	for i := range m.Layers {
		l := &m.Layers[i]
		for _, w := range []*Weight{l.Wq, l.Wk, l.Wv, l.Wo, l.WGate, l.WUp, l.WDown} {
			byName[w.Name] = w
		}
	}
	if m.Output != m.TokEmbd {
		byName[m.Output.Name] = m.Output
	}
	type pending struct {
		w *Weight
		f loraFactor
	}
	var add []pending
	for name, p := range a.Pairs {
		w, ok := byName[name]
		if !ok {
			if _, exists := m.File.Tensor(name); exists {
				return fmt.Errorf("%s: LoRA on %s is not supported by the engine", a.File.Path, name)
			}
			return fmt.Errorf("%s: the adapter adapts %s, which the model does not have", a.File.Path, name)
		}
		if p.A.Shape[0] != uint64(w.Cols) || p.B.Shape[1] != uint64(w.Rows) {
			return fmt.Errorf("%s: %s is %d×%d, lora_a %v and lora_b %v do not fit", a.File.Path, name, w.Rows, w.Cols, p.A.Shape, p.B.Shape)
		}
		A, B, err := a.Factors(p)
		if err != nil {
			return fmt.Errorf("%s: %w", a.File.Path, err)
		}
		add = append(add, pending{w, loraFactor{A: A, B: B, Rank: p.Rank(), Scale: a.Scale(userScale, p)}})
	}
	for _, p := range add {
		p.w.lora = append(p.w.lora, p.f)
	}
	return nil
}

// addLoRA adds each adapter's Scale·B·(A·x) to dst (n rows of w.Rows) for
// the n activation rows x (of w.Cols), in parallel over the rows of x.
func (w *Weight) addLoRA(dst, x []float32, n, threads int) {
	if len(w.lora) == 0 {
		return
	}
	kernels.Parallel(threads, n, func(i int) {
		xi := x[i*w.Cols : (i+1)*w.Cols]
		di := dst[i*w.Rows : (i+1)*w.Rows]
		for _, f := range w.lora {
			ax := make([]float32, f.Rank)
			for k := range ax {
				a := f.A[k*w.Cols : (k+1)*w.Cols]
				var s float32
				for c, v := range a {
					s += v * xi[c]
				}
				ax[k] = s
			}
			for r := range di {
				b := f.B[r*f.Rank : (r+1)*f.Rank]
				var s float32
				for k, v := range b {
					s += v * ax[k]
				}
				di[r] += s * f.Scale
			}
		}
	})
}
