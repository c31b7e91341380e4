package quant

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
)

// archGoldens are the folders of shared/testdata/arch that hold
// llama-quantize b4748 outputs (qwen3, qwen3-tied and gemma3 are newer than
// b4748 and have none).
var archGoldens = []string{"qwen2", "mixtral", "gemma", "gemma2", "phi3", "phi3-longrope", "llama3"}

// archPresets have a full file (Q4_K_M) or a hash manifest in every folder.
var archPresets = []string{"Q4_K_M", "Q2_K", "Q3_K_M", "Q4_0", "Q5_K_M", "Q6_K", "Q8_0", "IQ4_XS"}

// loadArchGolden is loadGolden for arch/NAME/golden-PRESET.*.
func loadArchGolden(t *testing.T, arch, preset string) ([]goldenTensor, string) {
	t.Helper()
	dir := filepath.Join(fixtures.Path(t, "arch/"+arch))
	full := filepath.Join(dir, "golden-"+preset+".gguf")
	if _, err := os.Stat(full); err == nil {
		return tensorsOfFile(t, full), full
	}
	raw, err := os.ReadFile(filepath.Join(dir, "golden-"+preset+".hashes.json"))
	if err != nil {
		t.Skipf("no golden for %s %s: %v", arch, preset, err)
	}
	return readManifest(t, raw), ""
}

// TestQuantizeArchGolden quantizes every architecture's converted f32 file
// with each preset llama-quantize b4748 was run with and compares the whole
// file (Q4_K_M) or every tensor's type, shape and hash. It exercises the
// per-architecture rules: stacked experts (mixtral), fused qkv (phi3), tied
// output (gemma, gemma2), and the fallbacks for rows that are not multiples
// of 256.
func TestQuantizeArchGolden(t *testing.T) {
	for _, arch := range archGoldens {
		for _, preset := range archPresets {
			t.Run(arch+"/"+preset, func(t *testing.T) {
				want, full := loadArchGolden(t, arch, preset)
				got := quantizeFile(t, "arch/"+arch+"/golden-f32.gguf", Options{Preset: mustPreset(t, preset), Threads: 2})
				compareWithGolden(t, got, want, full)
			})
		}
	}
}
