package quant

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleImatrix(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := WriteImatrix(&buf, []ImatrixEntry{
		{Name: "blk.0.ffn_down.weight", NCall: 4, Values: []float32{4, 8, 2, 0}},
		{Name: "blk.0.attn_q.weight", NCall: 0, Values: []float32{1, 2}},
		{Name: "token_embd.weight", NCall: 1, Values: []float32{1}},
	}, 10, "wiki.train.raw")
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImatrixRoundTrip(t *testing.T) {
	data := sampleImatrix(t)
	p := filepath.Join(t.TempDir(), "imatrix.dat")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadImatrix(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Chunks != 10 || m.Dataset != "wiki.train.raw" || len(m.Weights) != 3 {
		t.Fatalf("got chunks %d dataset %q, %d entries", m.Chunks, m.Dataset, len(m.Weights))
	}
	// Values are divided by ncall when it is positive.
	if w := m.Weights["blk.0.ffn_down.weight"]; !equalF32(w, []float32{1, 2, 0.5, 0}) {
		t.Errorf("ffn_down: %v", w)
	}
	if w := m.Weights["blk.0.attn_q.weight"]; !equalF32(w, []float32{1, 2}) {
		t.Errorf("attn_q (ncall 0): %v", w)
	}
	if w, err := m.For("blk.0.attn_q.weight", 2, 1); err != nil || len(w) != 2 {
		t.Errorf("For attn_q: %v %v", w, err)
	}
	if _, err := m.For("blk.0.attn_q.weight", 4, 1); err == nil {
		t.Error("For accepted a size mismatch")
	}
	if w, err := m.For("token_embd.weight", 256, 1); err != nil || w != nil {
		t.Errorf("token_embd mismatch should be ignored: %v %v", w, err)
	}
	if w, err := m.For("output.weight", 256, 1); err != nil || w != nil {
		t.Errorf("missing entry: %v %v", w, err)
	}
	m.Filter([]string{"blk."}, []string{"attn"})
	if len(m.Weights) != 1 || m.Weights["blk.0.ffn_down.weight"] == nil {
		t.Errorf("after filter: %v", m.Weights)
	}

	// Without the trailer (older files) the chunk count is unknown.
	trimmed := data[:len(data)-4-4-len("wiki.train.raw")]
	m, err = ParseImatrix(trimmed)
	if err != nil || m.Chunks != -1 || m.Dataset != "" {
		t.Errorf("no trailer: %+v %v", m, err)
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestImatrixRejects(t *testing.T) {
	data := sampleImatrix(t)
	for cut := 1; cut < len(data)-4-4-len("wiki.train.raw"); cut += 3 {
		if _, err := ParseImatrix(data[:cut]); err == nil {
			t.Errorf("accepted %d of %d bytes", cut, len(data))
		}
	}
	if _, err := ParseImatrix([]byte{0, 0, 0, 0}); err == nil {
		t.Error("accepted zero entries")
	}
	bad := append([]byte(nil), data...)
	// First value of the first entry (attn_q, sorted first) → +Inf.
	off := 4 + 4 + len("blk.0.attn_q.weight") + 4 + 4
	binary.LittleEndian.PutUint32(bad[off:], 0x7f800000)
	if _, err := ParseImatrix(bad); err == nil || !strings.Contains(err.Error(), "attn_q") {
		t.Errorf("non-finite value: %v", err)
	}
}

func FuzzParseImatrix(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteImatrix(&buf, []ImatrixEntry{{Name: "a", NCall: 2, Values: []float32{1, 2, 3}}}, 1, "d")
	f.Add(buf.Bytes())
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseImatrix(data)
		if err != nil {
			return
		}
		for name, w := range m.Weights {
			if len(w) == 0 {
				t.Fatalf("%s: no weights", name)
			}
			for _, v := range w {
				if !finite(v) {
					t.Fatalf("%s: non-finite weight", name)
				}
			}
		}
	})
}
