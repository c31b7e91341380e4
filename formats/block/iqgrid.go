package block

import (
	"math"
	"sync"
)

// The 2-bit i-quants (IQ2_XXS, IQ2_XS, IQ2_S) and the 1-bit ones (IQ1_S,
// IQ1_M) store groups of eight elements as the index of a point of a fixed
// grid. Their encoders quantize the eight magnitudes of a group to levels
// l in {0, 1, 2} (the values 2l+1 = 1, 3, 5 against the group's scale),
// pack the levels two bits each into a key u (element k in bits 2k, 2k+1),
// and look the key up: a key on the grid gives its index directly; a key
// off the grid gives a short list of the nearest grid points, among which
// the encoder picks the one of least weighted error. An IQGrid holds that
// lookup, built as ggml's iq2xs_init_impl builds it, so that the encoders
// find the same points in the same order and choose as llama-quantize does.

// iqGridKeys is the number of keys an IQGrid maps (ggml's kmap_size): every
// key whose levels are all at most 2 (the largest is 0xAAAA) is below it.
const iqGridKeys = 43692

// IQGrid maps the keys of eight quantized levels to grid points.
type IQGrid struct {
	// points[i] is grid point i as the quantizer sees it: eight values
	// 2l+1 (ggml's the_grid).
	points [][8]int8
	// values[i] is points[i] as float32, for the neighbour searches.
	values [][8]float32
	// index[u] is the grid index of key u, or, for a key off the grid,
	// −(o+1) where neighbours[o] is the length of the key's neighbour
	// list and the list follows it (ggml's kmap_q2xs and kneighbors_q2xs).
	index      []int32
	neighbours []uint16
}

// iqGridSource builds one grid's IQGrid on first use: the lists take a
// moment to build and only the encoders of i-quants need them.
type iqGridSource struct {
	once   sync.Once
	levels []uint16 // the grid as packed 2-bit levels (ggml's kgrid_*)
	nwant  int      // how many distinct distances a neighbour list covers
	grid   *IQGrid
}

func (s *iqGridSource) get() *IQGrid {
	s.once.Do(func() { s.grid = newIQGrid(s.levels, s.nwant) })
	return s.grid
}

// The neighbour lists of IQ2_XXS and IQ2_XS keep the points at the two
// smallest distances, IQ2_S's only the nearest, IQ1_S's and IQ1_M's the
// three smallest (iq2xs_init_impl's nwant).
var (
	iq2xxsGrid = iqGridSource{levels: kgrid2Bit256[:], nwant: 2}
	iq2xsGrid  = iqGridSource{levels: kgrid2Bit512[:], nwant: 2}
	iq2sGrid   = iqGridSource{levels: kgrid2Bit1024[:], nwant: 1}
	iq1Grid    = iqGridSource{levels: kgrid1Bit2048[:], nwant: 3}
)

// IQ2XXSGridIndex returns the 256-point grid index of IQ2_XXS.
func IQ2XXSGridIndex() *IQGrid { return iq2xxsGrid.get() }

// IQ2XSGridIndex returns the 512-point grid index of IQ2_XS.
func IQ2XSGridIndex() *IQGrid { return iq2xsGrid.get() }

// IQ2SGridIndex returns the 1024-point grid index of IQ2_S.
func IQ2SGridIndex() *IQGrid { return iq2sGrid.get() }

// IQ1GridIndex returns the 2048-point grid index of IQ1_S and IQ1_M.
func IQ1GridIndex() *IQGrid { return iq1Grid.get() }

// newIQGrid builds the index of the grid whose points are levels, with
// neighbour lists holding, for every key off the grid, the grid points at
// the nwant smallest squared distances from the key's point, ordered by
// distance and then by grid index (the order of ggml's qsort on the pair).
func newIQGrid(levels []uint16, nwant int) *IQGrid {
	g := &IQGrid{
		points: make([][8]int8, len(levels)),
		values: make([][8]float32, len(levels)),
		index:  make([]int32, iqGridKeys),
	}
	for i := range g.index {
		g.index[i] = -1
	}
	for i, u := range levels {
		g.points[i] = keyPoint(int(u))
		for k, v := range g.points[i] {
			g.values[i][k] = float32(v)
		}
		g.index[u] = int32(i)
	}

	// A key's squared distance to point j is the sum of the distances of
	// its low four and its high four elements, each a function of one key
	// byte: tabulating both halves for every point replaces eight
	// subtractions and squares by two loads.
	n := len(levels)
	halfDist := func(shift int) []uint16 {
		t := make([]uint16, 256*n)
		for b := 0; b < 256; b++ {
			p := keyPoint(b)
			for j, q := range g.points {
				d := 0
				for k := 0; k < 4; k++ {
					e := int(q[k+shift]) - int(p[k])
					d += e * e
				}
				t[b*n+j] = uint16(d)
			}
		}
		return t
	}
	lowDist, highDist := halfDist(0), halfDist(4)

	// Eight elements differ by at most 6 each: distances are below 8·36+1.
	const maxDist = 8*36 + 1
	dist := make([]uint16, n)
	for u := 0; u < iqGridKeys; u++ {
		if g.index[u] >= 0 {
			continue
		}
		lo, hi := lowDist[(u&0xFF)*n:][:n], highDist[(u>>8)*n:][:n]
		var seen [maxDist]bool
		for j := range dist {
			d := lo[j] + hi[j]
			dist[j] = d
			seen[d] = true
		}
		g.index[u] = -int32(len(g.neighbours) + 1)
		start := len(g.neighbours)
		g.neighbours = append(g.neighbours, 0)
		for d, have := 0, 0; d < maxDist && have < nwant; d++ {
			if !seen[d] {
				continue
			}
			have++
			for j, dj := range dist {
				if int(dj) == d {
					g.neighbours = append(g.neighbours, uint16(j))
				}
			}
		}
		g.neighbours[start] = uint16(len(g.neighbours) - start - 1)
	}
	return g
}

// keyPoint returns the eight values 2l+1 of the levels packed in key u.
func keyPoint(u int) (p [8]int8) {
	for k := range p {
		p[k] = int8(2*((u>>(2*k))&3) + 1)
	}
	return p
}

// IQGridKey packs eight levels in {0, 1, 2, 3} into a grid key.
func IQGridKey(L []int8) uint16 {
	var u uint16
	for k, l := range L[:8] {
		u |= uint16(l) << (2 * k)
	}
	return u
}

// Len returns the number of grid points.
func (g *IQGrid) Len() int { return len(g.points) }

// Point returns grid point i as eight values 2l+1.
func (g *IQGrid) Point(i int) [8]int8 { return g.points[i] }

// Index returns the grid index of key u, or −1 when u is off the grid.
func (g *IQGrid) Index(u uint16) int {
	if int(u) >= len(g.index) || g.index[u] < 0 {
		return -1
	}
	return int(g.index[u])
}

// Neighbours returns the grid points nearest key u in ggml's order (by
// squared distance, then by index), or nil when u is on the grid. The slice
// is shared: callers must not change it.
func (g *IQGrid) Neighbours(u uint16) []uint16 {
	if int(u) >= len(g.index) || g.index[u] >= 0 {
		return nil
	}
	o := int(-g.index[u] - 1)
	return g.neighbours[o+1 : o+1+int(g.neighbours[o])]
}

// BestNeighbour returns, among the neighbours of key u (off the grid), the
// grid point p whose values scaled by scale are nearest xval in the error
// Σ weight·(scale·p − xval)², the first one on ties, and writes its levels
// to L[:8] (ggml's iq2_find_best_neighbour). It returns −1, leaving L
// alone, when u has no neighbours.
func (g *IQGrid) BestNeighbour(u uint16, xval, weight []float32, scale float32, L []int8) int {
	x, w := (*[8]float32)(xval), (*[8]float32)(weight)
	best := float32(math.MaxFloat32)
	index := -1
	for _, j := range g.Neighbours(u) {
		p := &g.values[j]
		var d2 float32
		for i := range p {
			diff := float32(scale*p[i]) - x[i]
			d2 += float32(float32(w[i]*diff) * diff)
		}
		if d2 < best {
			best, index = d2, int(j)
		}
	}
	if index >= 0 {
		for i, v := range g.points[index] {
			L[i] = (v - 1) / 2
		}
	}
	return index
}
