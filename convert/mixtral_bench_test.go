package convert_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/formats/safetensors"
	"github.com/llqt/llqt/internal/synth"
)

// writeMixtral writes a synthetic MixtralForCausalLM checkpoint (BF16,
// streamed to disk): layers × experts × {w1, w2, w3} of [ff, hidden].
func writeMixtral(tb testing.TB, dir string, hidden, ff, experts, layers, vocab int) {
	tb.Helper()
	o := synth.Options{Hidden: hidden, Intermediate: 64, Layers: 1, Heads: 4, KVHeads: 4, Vocab: vocab, MaxPositions: 64, DType: safetensors.BF16}
	if err := synth.Write(dir, o); err != nil {
		tb.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "model*.safetensors"))
	for _, m := range append(matches, filepath.Join(dir, safetensors.IndexName)) {
		os.Remove(m)
	}
	cfg := map[string]any{"architectures": []string{"MixtralForCausalLM"}, "hidden_size": hidden, "intermediate_size": ff,
		"num_hidden_layers": layers, "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": vocab,
		"num_local_experts": experts, "num_experts_per_tok": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
		"rope_theta": 1e6, "tie_word_embeddings": false}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		tb.Fatal(err)
	}
	fill := func(buf []byte) error {
		for i := 0; i+1 < len(buf); i += 2 {
			buf[i], buf[i+1] = byte(i>>3), 0x3c // small positive BF16 values
		}
		return nil
	}
	h, f := uint64(hidden), uint64(ff)
	ws := []safetensors.WriteTensor{
		{Name: "model.embed_tokens.weight", DType: safetensors.BF16, Shape: []uint64{uint64(vocab), h}, Fill: fill},
		{Name: "model.norm.weight", DType: safetensors.BF16, Shape: []uint64{h}, Fill: fill},
		{Name: "lm_head.weight", DType: safetensors.BF16, Shape: []uint64{uint64(vocab), h}, Fill: fill},
	}
	for l := 0; l < layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		for _, n := range []string{"input_layernorm", "post_attention_layernorm"} {
			ws = append(ws, safetensors.WriteTensor{Name: p + n + ".weight", DType: safetensors.BF16, Shape: []uint64{h}, Fill: fill})
		}
		for _, n := range []string{"q_proj", "k_proj", "v_proj", "o_proj"} {
			ws = append(ws, safetensors.WriteTensor{Name: p + "self_attn." + n + ".weight", DType: safetensors.BF16, Shape: []uint64{h, h}, Fill: fill})
		}
		ws = append(ws, safetensors.WriteTensor{Name: p + "block_sparse_moe.gate.weight", DType: safetensors.BF16, Shape: []uint64{uint64(experts), h}, Fill: fill})
		for x := 0; x < experts; x++ {
			for _, w := range []string{"w1", "w2", "w3"} {
				shape := []uint64{f, h}
				if w == "w2" {
					shape = []uint64{h, f}
				}
				ws = append(ws, safetensors.WriteTensor{Name: fmt.Sprintf("%sblock_sparse_moe.experts.%d.%s.weight", p, x, w), DType: safetensors.BF16, Shape: shape, Fill: fill})
			}
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ws, map[string]string{"format": "pt"}); err != nil {
		tb.Fatal(err)
	}
}

// peakRSS reads VmHWM (peak resident set) from /proc/self/status in bytes.
func peakRSS() (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux 4.0+).
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// BenchmarkConvertMixtralRSS converts a synthetic 8-expert Mixtral-shape
// checkpoint to F32 and reports how far the peak RSS rose over the
// conversion, against the F32 size of one expert (w1+w2+w3). The stacked
// ffn_*_exps tensors are written one expert at a time, so the rise must
// stay below two experts (it would be the whole stack, four experts' worth
// here, if a stack were materialised at once). Linux only (VmHWM).
func BenchmarkConvertMixtralRSS(b *testing.B) {
	const hidden, ff, experts, layers, vocab = 512, 2048, 8, 2, 512
	dir := filepath.Join(b.TempDir(), "mixtral")
	writeMixtral(b, dir, hidden, ff, experts, layers, vocab)
	expertBytes := int64(3 * hidden * ff * 4) // one expert's three matrices in F32
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		if !resetPeakRSS() {
			b.Skip("cannot reset the peak RSS (needs Linux /proc/self/clear_refs)")
		}
		base, ok := peakRSS()
		if !ok {
			b.Skip("no VmHWM in /proc/self/status")
		}
		res, err := convert.Convert(dir, convert.Options{OutType: "f32"})
		if err != nil {
			b.Fatal(err)
		}
		if err := gguf.Write(context.Background(), io.Discard, res.Model, gguf.WriteOptions{Threads: 1}); err != nil {
			b.Fatal(err)
		}
		res.Close()
		peak, _ := peakRSS()
		rise := peak - base
		b.ReportMetric(float64(rise)/float64(expertBytes), "experts-of-peak-RSS")
		b.ReportMetric(float64(rise)/(1<<20), "peak-RSS-rise-MiB")
		if rise >= 2*expertBytes {
			b.Errorf("peak RSS rose by %d bytes, more than two experts (%d bytes)", rise, 2*expertBytes)
		}
	}
}
