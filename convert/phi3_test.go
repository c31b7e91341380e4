package convert

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/safetensors"
)

// TestPhi3Golden: fused qkv/gate_up and the vocabulary padded to 4160.
func TestPhi3Golden(t *testing.T) { archGolden(t, "phi3") }

// TestPhi3LongRoPEGolden: rope_factors_long/short and the attention factor
// as the second key.
func TestPhi3LongRoPEGolden(t *testing.T) { archGolden(t, "phi3-longrope") }

func TestPhi3AttnFactor(t *testing.T) {
	cases := []struct {
		typ        string
		max, orig  int
		wantFactor float32
	}{
		{"longrope", 2048, 64, 1.3540064}, // sqrt(1 + ln 32 / ln 64)
		{"su", 64, 64, 1},
		{"yarn", 4096, 1024, float32(0.1*1.3862943611198906 + 1)},
	}
	for _, c := range cases {
		cfg, err := ParseConfig([]byte(`{"hidden_size":64,"num_attention_heads":4,"max_position_embeddings":`+strconv.Itoa(c.max)+
			`,"original_max_position_embeddings":`+strconv.Itoa(c.orig)+`,"rope_scaling":{"type":"`+c.typ+
			`","long_factor":[1,1,1,1,1,1,1,1],"short_factor":[1,1,1,1,1,1,1,1]}}`), "config.json")
		if err != nil {
			t.Fatal(err)
		}
		ck, _ := safetensors.NewCheckpoint("", nil)
		b := &Builder{Config: cfg, Checkpoint: ck, Model: &formats.Model{}}
		p := registry["Phi3ForCausalLM"]().(*phi3)
		p.hp = decoderHParams{hidden: 64, heads: 4, headDim: 16}
		if err := p.ExtraTensors(b); err != nil {
			t.Fatal(err)
		}
		if v, _ := b.Model.KV.Get("phi3.rope.scaling.attn_factor"); !reflect.DeepEqual(v, c.wantFactor) {
			t.Errorf("%s: attn_factor %v, want %v", c.typ, v, c.wantFactor)
		}
		if len(b.Model.Tensors) != 2 || b.Model.Tensors[0].Name != "rope_factors_long.weight" {
			t.Errorf("%s: tensors %d", c.typ, len(b.Model.Tensors))
		}
	}
}
