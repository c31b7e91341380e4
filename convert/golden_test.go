package convert

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/formats/safetensors"
	"github.com/llqt/llqt/internal/fixtures"
)

// namingKeys are the converter's naming heuristics, exempt from comparison.
var namingKeys = map[string]bool{
	"general.name": true, "general.basename": true, "general.size_label": true, "general.finetune": true,
}

// convertTo converts dir and writes the GGUF to a temp file.
func convertTo(t *testing.T, dir, outType string, codec formats.Codec) string {
	t.Helper()
	res, err := Convert(dir, Options{OutType: outType})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	out := filepath.Join(t.TempDir(), "out.gguf")
	if err := gguf.WriteFile(context.Background(), out, res.Model, gguf.WriteOptions{Codec: codec, Threads: 2}); err != nil {
		t.Fatal(err)
	}
	return out
}

// compareGGUF checks metadata (except naming keys) and every tensor.
func compareGGUF(t *testing.T, gotPath, wantPath string) {
	t.Helper()
	got, err := gguf.Open(gotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want, err := gguf.Open(wantPath)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	filter := func(kvs formats.KVs) formats.KVs {
		var out formats.KVs
		for _, kv := range kvs {
			if !namingKeys[kv.Key] {
				out = append(out, kv)
			}
		}
		return out
	}
	gk, wk := filter(got.KV), filter(want.KV)
	for i := 0; i < max(len(gk), len(wk)); i++ {
		switch {
		case i >= len(gk):
			t.Errorf("missing key %s", wk[i].Key)
		case i >= len(wk):
			t.Errorf("extra key %s", gk[i].Key)
		case gk[i].Key != wk[i].Key:
			t.Errorf("key %d: %s, want %s", i, gk[i].Key, wk[i].Key)
		case !reflect.DeepEqual(gk[i].Value, wk[i].Value):
			t.Errorf("key %s: %s, want %s", gk[i].Key, short(gk[i].Value), short(wk[i].Value))
		}
	}
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for i := range want.Tensors {
		g, w := &got.Tensors[i], &want.Tensors[i]
		if g.Name != w.Name || g.Type != w.Type || !reflect.DeepEqual(g.Shape, w.Shape) {
			t.Errorf("tensor %d: %s %s %v, want %s %s %v", i, g.Name, g.Type, g.Shape, w.Name, w.Type, w.Shape)
			continue
		}
		gd, _ := got.Data(g)
		wd, _ := want.Data(w)
		if !bytes.Equal(gd, wd) {
			n := 0
			for j := range gd {
				if gd[j] != wd[j] {
					n++
				}
			}
			t.Errorf("tensor %s: %d of %d bytes differ", g.Name, n, len(gd))
		}
	}
}

func short(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

func sameBytes(t *testing.T, a, b string) {
	t.Helper()
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if !bytes.Equal(x, y) {
		t.Errorf("%s and %s differ (%d vs %d bytes)", a, b, len(x), len(y))
	}
}

func TestGoldenTinyLlama(t *testing.T) {
	dir := fixtures.Path(t, "tiny-llama-hf")
	for _, ot := range []string{"f32", "f16", "bf16"} {
		t.Run(ot, func(t *testing.T) {
			golden := fixtures.Path(t, "golden/tiny-llama-"+ot+".gguf")
			out := convertTo(t, dir, ot, nil)
			compareGGUF(t, out, golden)
			// The naming rule reproduces llama.cpp's guess for this
			// directory, so the whole file matches.
			sameBytes(t, out, golden)
		})
	}
}

// mergeShards copies the tiny checkpoint into one model.safetensors.
func mergeShards(t *testing.T, src string) string {
	t.Helper()
	c, err := safetensors.OpenDir(src)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ws []safetensors.WriteTensor
	for _, x := range c.Tensors {
		data, err := x.ReadRaw()
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, safetensors.WriteTensor{Name: x.Name, DType: x.DType, Shape: x.Shape, Data: data})
	}
	dir := filepath.Join(t.TempDir(), "tiny-llama-hf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ws, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestGoldenTinyLlamaSingleFile(t *testing.T) {
	dir := mergeShards(t, fixtures.Path(t, "tiny-llama-hf"))
	for _, ot := range []string{"f32", "bf16"} {
		t.Run(ot, func(t *testing.T) {
			golden := fixtures.Path(t, "golden/tiny-llama-"+ot+".gguf")
			out := convertTo(t, dir, ot, nil)
			compareGGUF(t, out, golden)
			sameBytes(t, out, golden)
		})
	}
}
