package eval

import (
	"errors"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
)

// TestF16CacheOverflowIsAnError: edge-f32.gguf has rows near F16's largest
// value, so an F16 KV cache would hold infinities and every score would be
// NaN. Decode must say where instead, and an F32 cache must give finite logits.
func TestF16CacheOverflowIsAnError(t *testing.T) {
	path := fixtures.Path(t, "golden/edge-f32.gguf")
	tokens := []int32{1, 15, 300, 42, 7, 99, 1000, 5}
	for _, tc := range []struct {
		name    string
		kvF32   bool
		wantErr string
	}{
		{"f16 cache", false, "every later score NaN"},
		{"f32 cache", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load(path, Options{Threads: 2, KVF32: tc.kvF32})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			c := m.NewContext(len(tokens))
			logits, err := c.Decode(tokens, true)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := checkFinite(logits, m.NVocab(), -1, 0, "logit"); err != nil {
					t.Fatal(err)
				}
				return
			}
			var ne *NumericError
			if !errors.As(err, &ne) {
				t.Fatalf("Decode: %v, want a NumericError", err)
			}
			if !ne.KVF16 || ne.Layer < 0 || ne.Pos < 0 || ne.Pos >= len(tokens) {
				t.Errorf("error %+v: want an F16 overflow at a layer and a position in the batch", *ne)
			}
			for _, want := range []string{tc.wantErr, "layer ", "token position ", "--kv-f32"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestNumericChecks(t *testing.T) {
	nan := float32(0)
	nan = nan / nan
	for _, tc := range []struct {
		name    string
		x       []float32
		f16     bool
		wantPos int // -1: no error
		wantF16 bool
	}{
		{"finite", []float32{1, -2, 70000}, false, -1, false},
		{"nan", []float32{1, 2, 3, nan}, false, 1, false},
		{"f16 range", []float32{1, 2, 3, 70000}, true, 1, true},
		{"f16 nan", []float32{nan, 2}, true, 0, false},
		{"f16 max", []float32{65504, -65504}, true, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := checkFinite
			if tc.f16 {
				check = checkF16
			}
			err := check(tc.x, 2, 3, 0, "key")
			if tc.wantPos < 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ne *NumericError
			if !errors.As(err, &ne) || ne.Pos != tc.wantPos || ne.Layer != 3 || ne.KVF16 != tc.wantF16 {
				t.Fatalf("got %v (%+v), want position %d, F16 %v", err, ne, tc.wantPos, tc.wantF16)
			}
		})
	}
}
