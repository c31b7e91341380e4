package eval

import "testing"

// TestSamplerPenaltyBanMinP checks the repeat penalty, bans and min-p on
// small hand-made logits.
func TestSamplerPenaltyBanMinP(t *testing.T) {
	logits := []float32{3, 2.9, 1, -1}
	for _, tc := range []struct {
		name     string
		opt      SamplerOptions
		accepted []int32
		draws    int
		want     map[int32]bool // every draw must be one of these
	}{
		{"greedy", SamplerOptions{Temp: 0}, nil, 1, map[int32]bool{0: true}},
		{"greedy penalized", SamplerOptions{Temp: 0, RepeatPenalty: 1.5, RepeatLastN: 4}, []int32{0}, 1, map[int32]bool{1: true}},
		{"penalty window passed", SamplerOptions{Temp: 0, RepeatPenalty: 1.5, RepeatLastN: 1}, []int32{0, 2}, 1, map[int32]bool{0: true}},
		{"penalty off at 1", SamplerOptions{Temp: 0, RepeatPenalty: 1, RepeatLastN: 4}, []int32{0}, 1, map[int32]bool{0: true}},
		{"banned", SamplerOptions{Temp: 0, Ban: []int32{0, 1}}, nil, 1, map[int32]bool{2: true}},
		{"banned sampled", SamplerOptions{Temp: 1, Ban: []int32{0}, Seed: 3}, nil, 200, map[int32]bool{1: true, 2: true, 3: true}},
		// min-p 0.5 keeps logits within ln 0.5 ≈ -0.69 of the largest: 0 and 1.
		{"min-p", SamplerOptions{Temp: 1, MinP: 0.5, Seed: 7}, nil, 200, map[int32]bool{0: true, 1: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSampler(tc.opt)
			for _, id := range tc.accepted {
				s.Accept(id)
			}
			seen := map[int32]bool{}
			for range tc.draws {
				id := s.Sample(logits)
				if !tc.want[id] {
					t.Fatalf("drew %d, want one of %v", id, tc.want)
				}
				seen[id] = true
			}
			if tc.draws > 1 && len(seen) < 2 {
				t.Errorf("200 draws gave only %v", seen)
			}
		})
	}
}
