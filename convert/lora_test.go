package convert

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadLoraAlpha(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		json string
		want float32
		err  bool
	}{
		{`{"lora_alpha": 16, "peft_type": "LORA"}`, 16, false},
		{`{"lora_alpha": 0.5}`, 0.5, false},
		{`{"r": 8}`, 0, true},
		{`{"lora_alpha": 16, "peft_type": "IA3"}`, 0, true},
		{`{"lora_alpha": 1e300}`, 0, true},
		{`not json`, 0, true},
	} {
		p := filepath.Join(dir, "adapter_config.json")
		if err := os.WriteFile(p, []byte(tc.json), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readLoraAlpha(p)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s: %v, %v; want %v, error %v", tc.json, got, err, tc.want, tc.err)
		}
	}
}

func TestLoraNames(t *testing.T) {
	for _, tc := range []struct{ in, base, gguf, perm string }{
		{"base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight", "model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight", "q"},
		{"base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight", "model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight", "k"},
		{"base_model.model.model.layers.12.mlp.down_proj.lora_B.weight", "model.layers.12.mlp.down_proj.weight", "blk.12.ffn_down.weight", ""},
	} {
		b := loraBaseName(tc.in)
		g, perm, err := loraGGUFName(b)
		if b != tc.base || g != tc.gguf || perm != tc.perm || err != nil {
			t.Errorf("%s: %s %s %q %v", tc.in, b, g, perm, err)
		}
	}
	if _, _, err := loraGGUFName("model.layers.0.self_attn.rotary.weight"); err == nil {
		t.Error("unknown tensor mapped")
	}
}

func FuzzReadLoraAlpha(f *testing.F) {
	f.Add([]byte(`{"lora_alpha": 16}`))
	f.Add([]byte(`{"lora_alpha": "x"}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "c.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = readLoraAlpha(p)
	})
}
