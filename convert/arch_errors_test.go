package convert_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/internal/fixtures"
)

// linkWithConfig makes a folder whose files link to src's, with config.json
// rewritten by edit.
func linkWithConfig(t *testing.T, src string, edit func(map[string]any)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "config.json" {
			continue
		}
		if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestArchBadInput: a config that disagrees with an architecture's
// checkpoint is refused with one line naming the file and the problem.
func TestArchBadInput(t *testing.T) {
	cases := []struct {
		arch string
		edit func(map[string]any)
		want []string
	}{
		{"qwen2", func(c map[string]any) { c["hidden_size"] = 32 }, []string{"model-00001-of-00002.safetensors", "has shape", "implies"}},
		{"mixtral", func(c map[string]any) { c["num_local_experts"] = 5 }, []string{"block_sparse_moe.gate.weight", "5 experts", "implies [5 64]"}},
		{"mixtral", func(c map[string]any) { c["num_local_experts"] = 3 }, []string{"experts.3", "has shape"}},
		{"gemma", func(c map[string]any) { delete(c, "head_dim") }, []string{"config.json", "head_dim"}},
		{"gemma2", func(c map[string]any) { c["num_hidden_layers"] = 25 }, []string{"layers.25", "25 layers"}},
		{"phi3", func(c map[string]any) { c["intermediate_size"] = 128 }, []string{"down_proj", "intermediate_size 128", "implies"}},
		{"phi3-longrope", func(c map[string]any) {
			c["rope_scaling"].(map[string]any)["long_factor"] = []float64{1, 2}
		}, []string{"config.json", "long_factor", "rotary dimension"}},
		{"qwen3", func(c map[string]any) { c["head_dim"] = 16 }, []string{"k_norm", "head_dim 16", "implies [16]"}},
		{"gemma3", func(c map[string]any) { c["attn_logit_softcapping"] = 50.0 }, []string{"config.json", "attn_logit_softcapping"}},
		{"llama3", func(c map[string]any) { c["architectures"] = []string{"FalconForCausalLM"} }, []string{"config.json", "FalconForCausalLM", "not supported"}},
	}
	for _, c := range cases {
		t.Run(c.arch, func(t *testing.T) {
			dir := linkWithConfig(t, fixtures.Path(t, "arch/"+c.arch+"/hf"), c.edit)
			res, err := convert.Convert(dir, convert.Options{OutType: "f32"})
			if err == nil {
				res.Close()
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			if !errors.Is(err, convert.ErrConfig) {
				t.Errorf("error %q does not wrap ErrConfig", msg)
			}
		})
	}
}
