package eval

import (
	"slices"
)

// The mixture-of-experts feed-forward (Mixtral), as llama.cpp's
// llm_build_moe_ffn computes it with softmax gating: the router's logits go
// through a softmax over all experts, the NUsed most probable experts are
// picked, their probabilities renormalised to sum to one, and the block's
// output is the sum over the picked experts, in order of probability, of
// weight × expert(x), each expert a SwiGLU feed-forward.

// moeScratch holds the buffers of the expert step, allocated with the
// context.
type moeScratch struct {
	probs  []float32 // [ubatch][n_expert] router probabilities
	picked []int     // [ubatch][n_used] expert ids, most probable first
	weight []float32 // [ubatch][n_used] renormalised probabilities
	rows   []int     // tokens routed to the expert in progress
	slots  []int     // and the slot each has it in
	xIn    []float32 // [ubatch][n_embd] their inputs, gathered
	out    []float32 // [ubatch][n_embd] the expert's outputs
	slotY  []float32 // [ubatch][n_used][n_embd] weighted outputs
	order  []int     // argsort scratch, n_expert
}

func newMoEScratch(m *Model, ub int) moeScratch {
	nExp, nUsed := 0, 0
	for _, l := range m.Layers {
		if e := l.Experts; e != nil {
			nExp, nUsed = max(nExp, len(e.Gate)), max(nUsed, e.NUsed)
		}
	}
	if nExp == 0 {
		return moeScratch{}
	}
	d := m.Hparams.NEmbd
	return moeScratch{
		probs: make([]float32, ub*nExp), picked: make([]int, ub*nUsed), weight: make([]float32, ub*nUsed),
		rows: make([]int, 0, ub), slots: make([]int, 0, ub),
		xIn: make([]float32, ub*d), out: make([]float32, ub*d), slotY: make([]float32, ub*nUsed*d),
		order: make([]int, nExp),
	}
}

// moeFFN computes the experts' weighted sum for nb rows of x into dst.
func (c *Context) moeFFN(e *Experts, dst, x []float32, nb int) {
	s := &c.moe
	d := c.m.Hparams.NEmbd
	nExp, nUsed := len(e.Gate), e.NUsed
	// Route: softmax of the router's logits, top NUsed, renormalised.
	probs := s.probs[:nb*nExp]
	c.product(probs, e.Router, x, nb)
	for i := range nb {
		p := probs[i*nExp : (i+1)*nExp]
		softmaxInPlace(p)
		order := s.order[:nExp]
		for j := range order {
			order[j] = j
		}
		// Descending probability; ties keep the lower expert first.
		slices.SortStableFunc(order, func(a, b int) int {
			switch {
			case p[a] > p[b]:
				return -1
			case p[a] < p[b]:
				return 1
			}
			return 0
		})
		var sum float64
		for k := range nUsed {
			s.picked[i*nUsed+k] = order[k]
			s.weight[i*nUsed+k] = p[order[k]]
			sum += float64(p[order[k]])
		}
		for k := range nUsed {
			s.weight[i*nUsed+k] /= float32(sum)
		}
	}
	// Run each expert once over the rows routed to it.
	for ex := range nExp {
		s.rows, s.slots = s.rows[:0], s.slots[:0]
		for i := range nb {
			for k := range nUsed {
				if s.picked[i*nUsed+k] == ex {
					s.rows = append(s.rows, i)
					s.slots = append(s.slots, k)
				}
			}
		}
		n := len(s.rows)
		if n == 0 {
			continue
		}
		for j, i := range s.rows {
			copy(s.xIn[j*d:(j+1)*d], x[i*d:(i+1)*d])
		}
		c.ffn(s.out, e.Gate[ex], e.Up[ex], e.Down[ex], s.xIn[:n*d], n)
		for j, i := range s.rows {
			k := s.slots[j]
			w := s.weight[i*nUsed+k]
			y := s.slotY[(i*nUsed+k)*d : (i*nUsed+k+1)*d]
			for t, v := range s.out[j*d : (j+1)*d] {
				y[t] = v * w
			}
		}
	}
	// Sum the slots in order.
	for i := range nb {
		out := dst[i*d : (i+1)*d]
		copy(out, s.slotY[i*nUsed*d:(i*nUsed+1)*d])
		for k := 1; k < nUsed; k++ {
			y := s.slotY[(i*nUsed+k)*d : (i*nUsed+k+1)*d]
			for t, v := range y {
				out[t] += v
			}
		}
	}
}
