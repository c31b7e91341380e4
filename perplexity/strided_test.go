package perplexity

import (
	"context"
	"math"
	"strings"
	"testing"
)

func TestPerplexityStrided(t *testing.T) {
	const nVocab = 16
	uniform := func(row []float32, _ []int32) { clear(row) }
	tokens := make([]int32, 100)
	for i := range tokens {
		tokens[i] = int32(i % nVocab)
	}
	for _, tc := range []struct {
		name              string
		nCtx, stride, max int
		wantChunks        int
		wantErr           string
	}{
		// window 16+4 = 20 tokens: (100-20+8-1)/8 = 10 windows
		{"stride 8", 16, 8, 0, 10, ""},
		{"chunks limit", 16, 8, 3, 3, ""},
		{"stride 1", 8, 1, 0, 92, ""},
		{"zero stride", 16, 0, 0, 0, "must be positive"},
		{"stride too big", 16, 16, 0, 0, "smaller than the context"},
		{"text too short", 60, 8, 0, 0, "text too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &fakeModel{nVocab: nVocab, logits: uniform}
			res, err := PerplexityStrided(context.Background(), m, tokens, tc.stride, Options{NCtx: tc.nCtx, NBatch: 7, MaxChunks: tc.max})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.NChunks != tc.wantChunks || res.NTokensScored != tc.wantChunks*tc.stride {
				t.Errorf("%d windows, %d scored; want %d, %d", res.NChunks, res.NTokensScored, tc.wantChunks, tc.wantChunks*tc.stride)
			}
			if got := NumStrided(len(tokens), tc.nCtx, tc.stride, tc.max); got != tc.wantChunks {
				t.Errorf("NumStrided = %d, want %d", got, tc.wantChunks)
			}
			if math.Abs(res.PPL-nVocab) > 1e-9 || res.PPLStderr != 0 {
				t.Errorf("PPL %v ± %v, want %d ± 0 for uniform logits", res.PPL, res.PPLStderr, nVocab)
			}
		})
	}
}
