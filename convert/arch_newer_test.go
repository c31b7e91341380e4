package convert

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/formats/safetensors"
	"github.com/llqt/llqt/internal/fixtures"
)

// archNewer converts a checkpoint newer than b4748 (no llama.cpp golden)
// and checks it against current llama.cpp's conventions as arch/README.md
// records them: names, keys, and every tensor's values against the
// checkpoint's (with Gemma's +1 on norms).
func archNewer(t *testing.T, name string) {
	t.Helper()
	cases := []struct {
		arch     string
		ggufArch string
		keys     map[string]any
		absent   []string
		perLayer []string
	}{
		{"qwen3", "qwen3", map[string]any{"qwen3.attention.key_length": uint32(32), "qwen3.attention.value_length": uint32(32),
			"qwen3.rope.freq_base": float32(1e6)}, []string{"qwen3.rope.scaling.type"},
			[]string{"attn_q_norm.weight", "attn_k_norm.weight", "attn_q.weight", "ffn_norm.weight"}},
		{"qwen3-tied", "qwen3", map[string]any{"qwen3.attention.key_length": uint32(32)}, []string{"output.weight"},
			[]string{"attn_q_norm.weight", "attn_k_norm.weight"}},
		{"gemma3", "gemma3", map[string]any{"gemma3.rope.freq_base": float32(1e6), "gemma3.rope.freq_base_swa": float32(10000),
			"gemma3.rope.scaling.type": "linear", "gemma3.rope.scaling.factor": float32(8), "gemma3.attention.sliding_window": uint32(32),
			"gemma3.attention.key_length": uint32(32), "tokenizer.ggml.add_space_prefix": false},
			[]string{"output.weight", "gemma3.final_logit_softcapping", "gemma3.attn_logit_softcapping"},
			[]string{"attn_q_norm.weight", "attn_k_norm.weight", "post_attention_norm.weight", "ffn_norm.weight", "post_ffw_norm.weight"}},
	}
	for _, c := range cases {
		if c.arch != name {
			continue
		}
		t.Run(c.arch, func(t *testing.T) {
			dir := fixtures.Path(t, "arch/"+c.arch+"/hf")
			out := convertTo(t, dir, "f32", nil)
			f, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if a, _ := f.KV.Get("general.architecture"); a != c.ggufArch {
				t.Errorf("architecture %v, want %s", a, c.ggufArch)
			}
			for k, want := range c.keys {
				if got, ok := f.KV.Get(k); !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
				}
			}
			names := map[string]*gguf.TensorInfo{}
			for i := range f.Tensors {
				names[f.Tensors[i].Name] = &f.Tensors[i]
			}
			for _, k := range c.absent {
				if _, ok := f.KV.Get(k); ok {
					t.Errorf("key %s written", k)
				}
				if _, ok := names[k]; ok {
					t.Errorf("tensor %s written", k)
				}
			}
			blocks, _ := f.KV.Get(c.ggufArch + ".block_count")
			for l := 0; l < int(blocks.(uint32)); l++ {
				for _, s := range c.perLayer {
					if _, ok := names[blockName(l, s)]; !ok {
						t.Errorf("tensor %s missing", blockName(l, s))
					}
				}
			}
			compareValues(t, f, dir, c.ggufArch == "gemma3")
		})
	}
}

func blockName(l int, s string) string { return "blk." + strconv.Itoa(l) + "." + s }

// compareValues checks every output tensor against the checkpoint tensor
// it came from: equal as float32, or equal plus one for Gemma norms.
func compareValues(t *testing.T, f *gguf.File, dir string, gemmaShift bool) {
	t.Helper()
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	res, err := Convert(dir, Options{OutType: "f32"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	checked := 0
	for _, x := range ck.Tensors {
		var name string
		for _, tt := range res.Model.Tensors {
			if src, ok := tt.Source.(*safetensors.Tensor); ok && src.Name == x.Name {
				name = tt.Name
			}
		}
		if name == "" {
			continue
		}
		ti, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		got, err := f.Data(ti)
		if err != nil {
			t.Fatal(err)
		}
		gf, _ := formats.PlainCodec{}.Decode(ti.Type, got, int(x.Elements()))
		raw, _ := x.ReadRaw()
		wf, _ := formats.PlainCodec{}.Decode(x.Type(), raw, int(x.Elements()))
		shift := float32(0)
		if gemmaShift && strings.HasSuffix(x.Name, "norm.weight") {
			shift = 1
		}
		for i := range wf {
			if gf[i] != wf[i]+shift {
				t.Errorf("%s → %s: element %d is %v, want %v", x.Name, name, i, gf[i], wf[i]+shift)
				break
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no tensor compared")
	}
}
