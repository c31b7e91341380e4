package quant

import (
	"encoding/binary"
	"math"

	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
)

// testGGUF is a GGUF file's tensors held in memory for the golden tests.
type testGGUF struct {
	tensors []testTensor
	byName  map[string]*testTensor
}

type testTensor struct {
	name  string
	shape []uint64
	typ   ggml.Type
	data  []byte
}

func readTestGGUF(path string) (*testGGUF, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	g := &testGGUF{byName: map[string]*testTensor{}}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		data, err := f.Data(ti)
		if err != nil {
			return nil, err
		}
		g.tensors = append(g.tensors, testTensor{
			name: ti.Name, shape: ti.Shape, typ: ti.Type,
			data: append([]byte(nil), data...), // the mapping goes with Close
		})
	}
	for i := range g.tensors {
		g.byName[g.tensors[i].name] = &g.tensors[i]
	}
	return g, nil
}

func (t *testTensor) float32s() []float32 {
	out := make([]float32, len(t.data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.data[4*i:]))
	}
	return out
}
