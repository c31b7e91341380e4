package quant

import (
	"errors"
	"fmt"
	"math"

	"github.com/llqt/llqt/formats/ggml"
)

// Size targets (llqt quantize --target-bpw / --target-size): instead of a
// preset's fixed rules, choose each tensor's type so that the estimated
// quality loss (the KL-divergence the tensor adds, see Sensitivity) is
// smallest for the bytes allowed.
//
// The total loss is taken as the sum of the tensors' losses, each measured
// (or estimated) with that tensor alone quantized: for the small
// perturbations of 2-8 bit quantization the KL-divergences of independent
// tensors add to first order. The choice is then a multiple-choice
// knapsack, solved by Lagrangian relaxation: for a price λ per byte every
// tensor takes the candidate minimising loss + λ·bytes, λ is bisected to the
// largest total within the budget, and leftover bytes buy the upgrades with
// the best loss saved per byte, and exchanges between pairs of tensors
// close most of what is left of the gap to the optimum.

// TargetCandidates are the types a size target chooses among, in the order
// they are tried: every one of them loads in stock llama.cpp and has llqt
// kernels. The ternary types are left out: they only suit models trained
// ternary.
var TargetCandidates = []ggml.Type{
	ggml.TypeIQ1_S, ggml.TypeIQ1_M, ggml.TypeIQ2_XXS, ggml.TypeIQ2_XS, ggml.TypeIQ2_S,
	ggml.TypeQ2_K, ggml.TypeIQ3_XXS, ggml.TypeIQ3_S, ggml.TypeQ3_K, ggml.TypeIQ4_XS,
	ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K, ggml.TypeQ8_0, ggml.TypeIQ4_NL,
	ggml.TypeQ4_0, ggml.TypeQ5_0,
}

// needsImportance are the candidates whose encoders need importance
// weights: llama.cpp refuses IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS and IQ2_S for a
// tensor without an imatrix entry, as their grids fit badly without them.
var needsImportance = map[ggml.Type]bool{
	ggml.TypeIQ1_S: true, ggml.TypeIQ1_M: true, ggml.TypeIQ2_XXS: true, ggml.TypeIQ2_XS: true, ggml.TypeIQ2_S: true,
}

// Choice is one candidate type of a tensor with its size and loss.
type Choice struct {
	Type  ggml.Type
	Bytes uint64
	// Loss is the estimated KL-divergence the tensor adds in this type.
	Loss float64
}

// TensorChoices are a tensor's candidates.
type TensorChoices struct {
	Name    string
	Choices []Choice
}

// NeedsImportance says t's encoder needs importance weights (an imatrix
// entry for the tensor), as llama.cpp requires for IQ1_S, IQ1_M, IQ2_XXS,
// IQ2_XS and IQ2_S.
func NeedsImportance(t ggml.Type) bool { return needsImportance[t] }

// CandidatesFor lists the target candidates a tensor of row length ne0 can
// take (the block must divide the row, and the types that need importance
// weights need an imatrix entry for the tensor), with their sizes for
// elements values; Loss is left for the caller to measure.
func CandidatesFor(ne0, elements uint64, haveImatrix bool) []Choice {
	var out []Choice
	for _, t := range TargetCandidates {
		if ne0 == 0 || ne0%uint64(t.BlockSize()) != 0 || !CanQuantize(t) || (needsImportance[t] && !haveImatrix) {
			continue
		}
		rs, ok := t.RowSize(ne0)
		if !ok {
			continue
		}
		out = append(out, Choice{Type: t, Bytes: rs * (elements / ne0)})
	}
	return out
}

// ChooseTypes picks one candidate per tensor so that the bytes add up to at
// most budget and the summed loss is as small as the Lagrangian method
// finds. It fails when even the smallest candidates do not fit.
func ChooseTypes(tensors []TensorChoices, budget uint64) (map[string]Choice, error) {
	if len(tensors) == 0 {
		return map[string]Choice{}, nil
	}
	var minBytes uint64
	for _, t := range tensors {
		if len(t.Choices) == 0 {
			return nil, fmt.Errorf("tensor %s has no candidate type", t.Name)
		}
		for _, c := range t.Choices {
			if math.IsNaN(c.Loss) || math.IsInf(c.Loss, 0) || c.Loss < 0 {
				return nil, fmt.Errorf("tensor %s: %v has loss %v", t.Name, c.Type, c.Loss)
			}
		}
		minBytes += t.Choices[smallest(t.Choices)].Bytes
	}
	if minBytes > budget {
		return nil, fmt.Errorf("%w: the smallest types need %d bytes of tensor data, the target allows %d", ErrTargetTooSmall, minBytes, budget)
	}
	pick := func(lambda float64) ([]int, uint64) {
		idx := make([]int, len(tensors))
		var total uint64
		for i, t := range tensors {
			best, bestV := 0, math.Inf(1)
			for j, c := range t.Choices {
				v := c.Loss + lambda*float64(c.Bytes)
				if v < bestV || (v == bestV && c.Bytes < t.Choices[best].Bytes) {
					best, bestV = j, v
				}
			}
			idx[i] = best
			total += t.Choices[best].Bytes
		}
		return idx, total
	}
	// λ = 0 takes every tensor's best quality; if that fits, done.
	idx, total := pick(0)
	if total > budget {
		lo, hi := 0.0, 1e-12
		for {
			if _, tot := pick(hi); tot <= budget {
				break
			}
			hi *= 2
			if hi > 1e30 {
				break
			}
		}
		for range 200 {
			mid := (lo + hi) / 2
			if _, tot := pick(mid); tot <= budget {
				hi = mid
			} else {
				lo = mid
			}
		}
		idx, total = pick(hi)
		if total > budget {
			// Prices so high that every loss is negligible still straddle
			// a tie: start from the smallest candidates and let the fill
			// below spend the budget.
			total = 0
			for i, t := range tensors {
				idx[i] = smallest(t.Choices)
				total += t.Choices[idx[i]].Bytes
			}
		}
	}
	// Spend what is left on the upgrades that save the most loss per byte.
	for {
		bestI, bestJ, bestRate := -1, -1, 0.0
		for i, t := range tensors {
			cur := t.Choices[idx[i]]
			for j, c := range t.Choices {
				if c.Bytes <= cur.Bytes || c.Loss >= cur.Loss || total-cur.Bytes+c.Bytes > budget {
					continue
				}
				if rate := (cur.Loss - c.Loss) / float64(c.Bytes-cur.Bytes); rate > bestRate {
					bestI, bestJ, bestRate = i, j, rate
				}
			}
		}
		if bestI < 0 {
			break
		}
		total += tensors[bestI].Choices[bestJ].Bytes - tensors[bestI].Choices[idx[bestI]].Bytes
		idx[bestI] = bestJ
	}
	improvePairs(tensors, idx, &total, budget)
	out := make(map[string]Choice, len(tensors))
	for i, t := range tensors {
		out[t.Name] = t.Choices[idx[i]]
	}
	return out, nil
}

// improvePairs closes some of the Lagrangian method's integrality gap (large
// when there are few tensors): it changes two tensors' types at once
// whenever that lowers the loss within the budget, until no pair does (or
// a bounded number of sweeps).
func improvePairs(tensors []TensorChoices, idx []int, total *uint64, budget uint64) {
	for range 100 {
		improved := false
		for i := range tensors {
			for j := i + 1; j < len(tensors); j++ {
				ci, cj := tensors[i].Choices[idx[i]], tensors[j].Choices[idx[j]]
				base := *total - ci.Bytes - cj.Bytes
				bestA, bestB, bestLoss := idx[i], idx[j], ci.Loss+cj.Loss
				for a, ca := range tensors[i].Choices {
					for b, cb := range tensors[j].Choices {
						if base+ca.Bytes+cb.Bytes <= budget && ca.Loss+cb.Loss < bestLoss*(1-1e-12) {
							bestA, bestB, bestLoss = a, b, ca.Loss+cb.Loss
						}
					}
				}
				if bestA != idx[i] || bestB != idx[j] {
					idx[i], idx[j] = bestA, bestB
					*total = base + tensors[i].Choices[bestA].Bytes + tensors[j].Choices[bestB].Bytes
					improved = true
				}
			}
		}
		if !improved {
			return
		}
	}
}

// ErrTargetTooSmall is returned when a size target is below what the
// smallest types reach.
var ErrTargetTooSmall = errors.New("the size target is too small")

// smallest is the index of the candidate with the fewest bytes.
func smallest(cs []Choice) int {
	best := 0
	for i, c := range cs {
		if c.Bytes < cs[best].Bytes {
			best = i
		}
	}
	return best
}

// ProxyLoss is the loss estimate that needs no model run: the squared error
// of the tensor's products, Σ_rows Σ_j w_j·(x_j − x̂_j)², with w the
// importance weights (the mean squared activation of column j, from the
// imatrix; 1 without one) and x̂ the tensor quantized to t and decoded back.
// At most maxRows rows, spread evenly, are quantized, and the sum is scaled
// to all rows. data is the tensor in float32, ne0 values per row.
func ProxyLoss(t ggml.Type, data []float32, ne0 int, imatrix []float32, maxRows int) (float64, error) {
	rows := len(data) / ne0
	step := 1
	if maxRows > 0 && rows > maxRows {
		step = rows / maxRows
	}
	var sum float64
	var n int
	row := make([]float32, ne0)
	back := make([]float32, ne0)
	for r := 0; r < rows; r += step {
		copy(row, data[r*ne0:(r+1)*ne0])
		var w []float32
		if imatrix != nil {
			w = imatrix[:ne0]
		}
		q, err := Quantize(t, row, ne0, w)
		if err != nil {
			return 0, err
		}
		if err := DequantizeInto(t, back, q); err != nil {
			return 0, err
		}
		for j, v := range row {
			d := float64(v - back[j])
			wj := 1.0
			if w != nil {
				wj = float64(w[j])
			}
			sum += wj * d * d
		}
		n++
	}
	return sum * float64(rows) / float64(n), nil
}
