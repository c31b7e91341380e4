package eval

import (
	"fmt"

	"github.com/llqt/llqt/formats/ggml"
)

// ReplaceWeight makes the engine use data, stored as typ, for the weight
// matrix name (same shape) until restore is called, which puts the file's
// own back. It exists to measure what quantizing one tensor costs (see
// perplexity.KLDProbe) without writing a model; no context of m may run
// while it is called.
func (m *Model) ReplaceWeight(name string, typ ggml.Type, data []byte) (restore func(), err error) {
	w := m.weights[name]
	if w == nil {
		return nil, fmt.Errorf("eval: no weight matrix %s in the model", name)
	}
	if !matmulSupported(typ) {
		return nil, fmt.Errorf("eval: %s: type %s is not supported by the engine", name, typ)
	}
	rs, ok := typ.RowSize(uint64(w.Cols))
	if !ok || uint64(len(data)) != rs*uint64(w.Rows) {
		return nil, fmt.Errorf("eval: %s: %d bytes of %s for %d×%d values", name, len(data), typ, w.Rows, w.Cols)
	}
	oldType, oldData := w.Type, w.Data
	w.Type, w.Data = typ, data
	return func() { w.Type, w.Data = oldType, oldData }, nil
}
