package tokenizer

// A mergeQueue is a binary heap of merge candidates: pop returns the one
// that goes first by T's before. The SPM and BPE tokenizers share it (each
// orders its own candidates); container/heap would box every pushed
// candidate in an interface.
type mergeQueue[T interface{ before(T) bool }] []T

func (q *mergeQueue[T]) push(v T) {
	*q = append(*q, v)
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h[i].before(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

// heapify orders the queue in O(n), for an initial bulk of candidates.
func (q mergeQueue[T]) heapify() {
	for i := len(q)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
}

func (q *mergeQueue[T]) pop() T {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	h.down(0)
	*q = h
	return top
}

func (q mergeQueue[T]) down(i int) {
	for {
		l, r, best := 2*i+1, 2*i+2, i
		if l < len(q) && q[l].before(q[best]) {
			best = l
		}
		if r < len(q) && q[r].before(q[best]) {
			best = r
		}
		if best == i {
			return
		}
		q[i], q[best] = q[best], q[i]
		i = best
	}
}
