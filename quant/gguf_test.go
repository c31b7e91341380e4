package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"

	"github.com/llqt/llqt/formats/ggml"
)

// A minimal GGUF reader for the golden comparisons, so these tests do not
// depend on formats/gguf.

type testTensor struct {
	name  string
	shape []uint64
	typ   ggml.Type
	data  []byte
}

type testGGUF struct {
	tensors []testTensor
	byName  map[string]*testTensor
}

func readTestGGUF(path string) (*testGGUF, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := 0
	fail := func(what string) error { return fmt.Errorf("%s: bad GGUF at %d: %s", path, p, what) }
	need := func(n int) bool { return p+n <= len(b) }
	u32 := func() uint32 { v := binary.LittleEndian.Uint32(b[p:]); p += 4; return v }
	u64 := func() uint64 { v := binary.LittleEndian.Uint64(b[p:]); p += 8; return v }
	str := func() (string, error) {
		if !need(8) {
			return "", fail("string length")
		}
		n := int(u64())
		if n < 0 || !need(n) {
			return "", fail("string")
		}
		s := string(b[p : p+n])
		p += n
		return s, nil
	}
	if !need(24) || string(b[:4]) != "GGUF" {
		return nil, fail("magic")
	}
	p = 4
	if v := u32(); v != 3 {
		return nil, fail(fmt.Sprintf("version %d", v))
	}
	nt, nkv := u64(), u64()
	scalarSize := map[uint32]int{0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
	alignment := uint64(32)
	var skip func(vt uint32) error
	skip = func(vt uint32) error {
		if n, ok := scalarSize[vt]; ok {
			if !need(n) {
				return fail("value")
			}
			p += n
			return nil
		}
		switch vt {
		case 8:
			_, err := str()
			return err
		case 9:
			if !need(12) {
				return fail("array")
			}
			et := u32()
			n := u64()
			for i := uint64(0); i < n; i++ {
				if err := skip(et); err != nil {
					return err
				}
			}
			return nil
		}
		return fail(fmt.Sprintf("value type %d", vt))
	}
	for i := uint64(0); i < nkv; i++ {
		key, err := str()
		if err != nil {
			return nil, err
		}
		if !need(4) {
			return nil, fail("kv type")
		}
		vt := u32()
		if key == "general.alignment" && vt == 4 {
			alignment = uint64(binary.LittleEndian.Uint32(b[p:]))
		}
		if err := skip(vt); err != nil {
			return nil, err
		}
	}
	g := &testGGUF{byName: map[string]*testTensor{}}
	offsets := make([]uint64, nt)
	for i := uint64(0); i < nt; i++ {
		name, err := str()
		if err != nil {
			return nil, err
		}
		if !need(4) {
			return nil, fail("dims")
		}
		nd := u32()
		if nd > 4 || !need(int(nd)*8+12) {
			return nil, fail("tensor info")
		}
		shape := make([]uint64, nd)
		for d := range shape {
			shape[d] = u64()
		}
		typ := ggml.Type(u32())
		offsets[i] = u64()
		g.tensors = append(g.tensors, testTensor{name: name, shape: shape, typ: typ})
	}
	start := (uint64(p) + alignment - 1) / alignment * alignment
	for i := range g.tensors {
		t := &g.tensors[i]
		n := uint64(1)
		for _, d := range t.shape {
			n *= d
		}
		size, ok := t.typ.RowSize(n)
		if !ok {
			return nil, fmt.Errorf("%s: tensor %s: bad size", path, t.name)
		}
		lo := start + offsets[i]
		if lo+size > uint64(len(b)) {
			return nil, fmt.Errorf("%s: tensor %s: data out of file", path, t.name)
		}
		t.data = b[lo : lo+size]
		g.byName[t.name] = t
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
