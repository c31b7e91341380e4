package quant

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats/gguf"
)

// statsFixture collects two products of two tensors: rows of (1, 2) and
// (3, -4) for a, one row (0.5, 0.5, 2) for b.
func statsFixture(t testing.TB) *ImatrixStats {
	s := NewImatrixStats()
	for _, p := range []struct {
		name string
		x    []float32
		rows int
	}{
		{"blk.0.a.weight", []float32{1, 2, 3, -4}, 2},
		{"blk.0.a.weight", []float32{1, 2}, 1},
		{"blk.0.b.weight", []float32{0.5, 0.5, 2}, 1},
	} {
		if err := s.Add(p.name, p.x, p.rows, len(p.x)/p.rows); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestImatrixStatsFormats(t *testing.T) {
	s := statsFixture(t)
	if s.LastCall != 2 || s.NCall("blk.0.a.weight") != 2 || s.NCall("blk.0.b.weight") != 1 {
		t.Fatalf("last call %d, ncalls %d %d", s.LastCall, s.NCall("blk.0.a.weight"), s.NCall("blk.0.b.weight"))
	}
	// a: Σx² = (1+9+1, 4+16+4) over 3 rows.
	want := map[string][]float32{"blk.0.a.weight": {11.0 / 3, 24.0 / 3}, "blk.0.b.weight": {0.25, 0.25, 4}}
	dir := t.TempDir()
	var dat bytes.Buffer
	if err := s.WriteDat(&dat, "calib.txt"); err != nil {
		t.Fatal(err)
	}
	datPath := filepath.Join(dir, "m.dat")
	ggufPath := filepath.Join(dir, "m.gguf")
	if err := os.WriteFile(datPath, dat.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(ggufPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteGGUF(context.Background(), f, "calib.txt", 2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, path := range []string{datPath, ggufPath} {
		m, err := ReadImatrix(path)
		if err != nil {
			t.Fatal(err)
		}
		if m.Dataset != "calib.txt" || m.Chunks < 1 {
			t.Errorf("%s: dataset %q, chunks %d", path, m.Dataset, m.Chunks)
		}
		for name, w := range want {
			got := m.Weights[name]
			if len(got) != len(w) {
				t.Fatalf("%s: %s has %d weights, want %d", path, name, len(got), len(w))
			}
			for j := range w {
				if d := got[j] - w[j]; d > 1e-6 || d < -1e-6 {
					t.Errorf("%s: %s[%d] = %g, want %g", path, name, j, got[j], w[j])
				}
			}
		}
	}
	// The GGUF file is current llama.cpp's layout.
	g, err := gguf.Open(ggufPath)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var names []string
	for _, ti := range g.Tensors {
		names = append(names, ti.Name)
	}
	if got := strings.Join(names, " "); got != "blk.0.a.weight.in_sum2 blk.0.a.weight.counts blk.0.a.weight.in_sum blk.0.b.weight.in_sum2 blk.0.b.weight.counts blk.0.b.weight.in_sum" {
		t.Errorf("tensors %s", got)
	}
	if v, _ := g.KV.String("general.type"); v != "imatrix" {
		t.Errorf("general.type %q", v)
	}
	if n, _ := g.KV.Uint("imatrix.chunk_count"); n != 1 { // 3 rows / chunk size 2
		t.Errorf("chunk_count %d", n)
	}
	// Combining both files doubles every count and keeps the means.
	c := NewImatrixStats()
	for _, path := range []string{datPath, ggufPath} {
		if err := c.AddFile(path, 2); err != nil {
			t.Fatal(err)
		}
	}
	if c.NCall("blk.0.a.weight") != 4 || len(c.Datasets) != 2 {
		t.Errorf("combined: ncall %d, datasets %v", c.NCall("blk.0.a.weight"), c.Datasets)
	}
	for name, w := range want {
		got := c.Imatrix("").Weights[name]
		for j := range w {
			if d := got[j] - w[j]; d > 1e-5 || d < -1e-5 {
				t.Errorf("combined %s[%d] = %g, want %g", name, j, got[j], w[j])
			}
		}
	}
}

func TestImatrixStatsErrors(t *testing.T) {
	s := statsFixture(t)
	if err := s.Add("blk.0.a.weight", []float32{1, 2, 3}, 1, 3); err == nil || !strings.Contains(err.Error(), "columns") {
		t.Errorf("column change: %v", err)
	}
	inf := float32(3e38)
	if err := s.Add("blk.1.c.weight", []float32{inf, inf}, 2, 1); err == nil || !strings.Contains(err.Error(), "detected") {
		t.Errorf("overflow: %v", err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.gguf")
	os.WriteFile(bad, []byte("GGUF\x03\x00\x00\x00"), 0o644)
	if err := NewImatrixStats().AddFile(bad, 512); err == nil || !strings.Contains(err.Error(), "bad.gguf") {
		t.Errorf("truncated GGUF: %v", err)
	}
	if err := NewImatrixStats().AddFile(filepath.Join(dir, "missing.dat"), 512); err == nil {
		t.Error("missing file accepted")
	}
}

// FuzzReadImatrixGGUF: any bytes after the GGUF magic give a matrix or an
// error, never a panic.
func FuzzReadImatrixGGUF(f *testing.F) {
	var buf bytes.Buffer
	if err := statsFixture(f).WriteGGUF(context.Background(), &buf, "x", 2); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("GGUF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, []byte("GGUF")) {
			return
		}
		_, _ = parseImatrixGGUF("fuzz.gguf", data)
		_ = NewImatrixStats().addGGUF("fuzz.gguf", data)
	})
}
