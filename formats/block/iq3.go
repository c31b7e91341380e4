package block

import (
	"encoding/binary"
	"math"
	"math/bits"
	"sync"
)

// The 3-bit grid formats: each group of four elements stores the index of a
// point of a fixed grid (four magnitudes of eight levels each; 256 of the
// 4096 combinations for IQ3_XXS, 512 for IQ3_S), and each element its sign.
// Both hold super-blocks of 256 elements in 8 sub-blocks of 32 with 4-bit
// scales ls. All fields are little-endian.
//
//	IQ3_XXS (98 bytes): d | qs[64] | scales_and_signs[8] (u32)
//	    qs[8j+k]: grid index (into IQ3XXSGrid) of group k of sub-block j;
//	    scales_and_signs[j]: bits 7l..7l+6 are the signs of elements
//	    8l..8l+6 of sub-block j (a set bit is negative), the sign of element
//	    8l+7 makes the number of negatives in the eight even; bits 28-31 are
//	    ls; w = d·(ls+½)·½·grid byte·sign (grid bytes 4, 12, …, 52, 62)
//	IQ3_S (110 bytes): d | qs[64] | qh[8] | signs[32] | scales[4]
//	    group k of sub-block j has grid index qs[8j+k] | (bit k of qh[j])<<8
//	    (into IQ3SGrid); signs[4j+l] bit i is the sign of element 8l+i of
//	    sub-block j; ls of sub-block j is the low (even j) or high nibble of
//	    scales[j/2]; w = d·(2ls+1)·grid byte·sign (grid bytes 1, 3, …, 15)
//
// The activation format of both is Q8_K.
const (
	IQ3_XXSBytes = 2 + 3*QK_K/8
	IQ3_SBytes   = 2 + QK_K/4 + QK_K/32 + QK_K/8 + QK_K/64
)

// iq3Grid is the search index of one IQ3 grid, as ggml's iq3xs_init_impl
// builds it: for each of the 4096 combinations of four 3-bit levels either
// its grid index or the grid points nearest to it.
type iq3Grid struct {
	// levels[i] are the four level values 2l+1 of grid point i; values[i]
	// the same as float32, for the neighbour search.
	levels [][4]int8
	values [][4]float32
	// index[u] for the combination u (level of element i in bits 3i..3i+2)
	// is its grid index when u is a grid point, else -(o+1) where
	// neighbours[o] is the number n of candidate points and
	// neighbours[o+1 : o+1+n] are their indices.
	index      [4096]int32
	neighbours []uint16
}

var (
	iq3XXSSearch, iq3SSearch         *iq3Grid
	iq3XXSSearchOnce, iq3SSearchOnce sync.Once
)

// iq3XXSGrid and iq3SGrid build the grid indexes on first use: the
// neighbour lists take tens of milliseconds to compute.
func iq3XXSGrid() *iq3Grid {
	iq3XXSSearchOnce.Do(func() { iq3XXSSearch = newIQ3Grid(iq3XXSPoints[:], 2) })
	return iq3XXSSearch
}

func iq3SGrid() *iq3Grid {
	iq3SSearchOnce.Do(func() { iq3SSearch = newIQ3Grid(iq3SPoints[:], 3) })
	return iq3SSearch
}

// newIQ3Grid indexes the grid points (packed as in iq3XXSPoints). The
// neighbours of a combination off the grid are the points at its nwant
// smallest squared distances, nearest first and by grid index within one
// distance: the order of ggml's qsort on (distance, index), which the
// encoder's first-found tie rule depends on.
func newIQ3Grid(points []uint16, nwant int) *iq3Grid {
	g := &iq3Grid{levels: make([][4]int8, len(points)), values: make([][4]float32, len(points))}
	for i := range g.index {
		g.index[i] = -1
	}
	for i, p := range points {
		for k := range 4 {
			g.levels[i][k] = int8(2*(p>>(3*k)&7) + 1)
			g.values[i][k] = float32(g.levels[i][k])
		}
		g.index[p] = int32(i)
	}
	dist := make([]int32, len(points))
	for u := range g.index {
		if g.index[u] >= 0 {
			continue
		}
		var pos [4]int32
		for k := range 4 {
			pos[k] = int32(2*(u>>(3*k)&7) + 1)
		}
		// The nwant smallest distinct distances, ascending.
		var want [3]int32
		nhave := 0
		for j, l := range g.levels {
			var d2 int32
			for k := range 4 {
				d := int32(l[k]) - pos[k]
				d2 += d * d
			}
			dist[j] = d2
			// Insert d2 into the sorted list of the smallest distances.
			i := 0
			for i < nhave && want[i] < d2 {
				i++
			}
			if i < nhave && want[i] == d2 {
				continue
			}
			if i == nwant {
				continue
			}
			copy(want[i+1:nwant], want[i:nwant-1])
			want[i] = d2
			nhave = min(nhave+1, nwant)
		}
		g.index[u] = -int32(len(g.neighbours) + 1)
		start := len(g.neighbours)
		g.neighbours = append(g.neighbours, 0)
		for _, d2 := range want[:nhave] {
			for j, d := range dist {
				if d == d2 {
					g.neighbours = append(g.neighbours, uint16(j))
				}
			}
		}
		g.neighbours[start] = uint16(len(g.neighbours) - start - 1)
	}
	return g
}

// bestNeighbour returns the candidate grid point (of the combination whose
// list starts at neighbours[off]) whose values times scale are nearest to
// xval in the weighted squared error, the first on ties, and writes its
// levels to L (ggml's iq3_find_best_neighbour).
func (g *iq3Grid) bestNeighbour(off int32, xval, weight []float32, scale float32, L []uint8) int {
	cands := g.neighbours[off+1 : off+1+int32(g.neighbours[off])]
	x, w := (*[4]float32)(xval), (*[4]float32)(weight)
	best, bestD2 := -1, float32(math.MaxFloat32)
	for _, c := range cands {
		var d2 float32
		for i, q := range &g.values[c] {
			diff := float32(scale*q) - x[i]
			d2 += float32(float32(w[i]*diff) * diff)
		}
		if d2 < bestD2 {
			best, bestD2 = int(c), d2
		}
	}
	if best < 0 {
		// Every distance is infinite or NaN (only for inputs near the
		// float32 limit); ggml aborts here, we take the first candidate.
		best = int(cands[0])
	}
	for i, q := range g.levels[best] {
		L[i] = uint8(q-1) / 2
	}
	return best
}

// iq3Combination returns the level combination of four elements at the inverse
// scale id, each level nearest_int(½(id·x−1)) clamped to 0..7.
func iq3Combination(xval []float32, id float32) (u int, L [4]uint8) {
	for i, v := range xval[:4] {
		l := oddLevel(id, v, 7)
		L[i] = uint8(l)
		u |= int(l) << (3 * i)
	}
	return u, L
}

// iq3Sub is the search state of one 32-element sub-block. L and onGrid
// outlive a sub-block on purpose: when no scale of the search improves on
// the start (all weights zero, or sums that underflow), IQ3_XXS's encoder
// in ggml reuses the previous sub-block's levels and flags, and so do we.
// ggml's state also carries over between the rows of one call and starts
// as uninitialized stack memory; ours starts each row (each EncodeIQ3_XXS
// call) with zero levels and no group on the grid.
type iq3Sub struct {
	weight, xval, waux [32]float32
	L, Laux            [32]uint8
	onGrid, onGridAux  [8]bool
}

// search finds the sub-block scale as quantize_row_iq3_xxs_impl and
// quantize_row_iq3_s_impl do: 2·steps+1 trial inverse scales around
// 15/max, each group snapped to the grid (to its best neighbour when off
// it) and the least-squares scale kept for the best trial; then the groups
// that needed a neighbour (all groups with refitAll) are snapped again at
// the chosen scale and the scale refitted. max is the largest of xval.
func (s *iq3Sub) search(g *iq3Grid, max float32, steps int, refitAll bool) float32 {
	const kMaxQ = 8
	var best float32
	scale := max / (2*kMaxQ - 1)
	for is := -steps; is <= steps; is++ {
		id := (2*kMaxQ - 1 + float32(float32(is)*0.2)) / max
		thisScale := 1 / id
		for k := range 8 {
			u, L := iq3Combination(s.xval[4*k:], id)
			copy(s.Laux[4*k:4*k+4], L[:])
			s.onGridAux[k] = g.index[u] >= 0
			if !s.onGridAux[k] {
				g.bestNeighbour(-g.index[u]-1, s.xval[4*k:4*k+4], s.waux[4*k:4*k+4], thisScale, s.Laux[4*k:4*k+4])
			}
		}
		sumqx, sumq2 := s.sums(&s.Laux)
		if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
			scale = sumqx / sumq2
			best = scale * sumqx
			s.L = s.Laux
			s.onGrid = s.onGridAux
		}
	}
	offGrid := false
	for _, on := range s.onGrid {
		offGrid = offGrid || !on
	}
	if !offGrid || scale <= 0 {
		return scale
	}
	id := 1 / scale
	for k := range 8 {
		if s.onGrid[k] && !refitAll {
			continue
		}
		u, L := iq3Combination(s.xval[4*k:], id)
		if i := g.index[u]; i >= 0 {
			copy(s.L[4*k:4*k+4], L[:])
		} else {
			g.bestNeighbour(-i-1, s.xval[4*k:4*k+4], s.waux[4*k:4*k+4], scale, s.L[4*k:4*k+4])
		}
	}
	if sumqx, sumq2 := s.sums(&s.L); sumq2 > 0 {
		scale = sumqx / sumq2
	}
	return scale
}

// sums returns Σw·x·q and Σw·q² for the levels L (q = 2l+1).
func (s *iq3Sub) sums(L *[32]uint8) (sumqx, sumq2 float32) {
	for i, l := range L {
		w, q := s.weight[i], float32(2*int(l)+1)
		sumqx += float32(float32(w*s.xval[i]) * q)
		sumq2 += float32(float32(w*q) * q)
	}
	return sumqx, sumq2
}

// prepare fills the weights (importance weights qw times √(σ²+x²), or x²)
// and their square roots, and the magnitudes of the 32 elements xb; it
// returns the sign bytes (bit i of byte l set where element 8l+i is
// negative).
func (s *iq3Sub) prepare(xb, qw []float32, sigma2 float32) (signs [4]uint8) {
	for i, v := range xb {
		if qw != nil {
			s.weight[i] = qw[i] * sqrt32(sigma2+float32(v*v))
		} else {
			s.weight[i] = v * v
		}
	}
	for i, w := range s.weight {
		s.waux[i] = sqrt32(w)
	}
	for i, v := range xb {
		if v >= 0 {
			s.xval[i] = v
		} else {
			s.xval[i] = -v
			signs[i/8] |= 1 << (i % 8)
		}
	}
	return signs
}

// superSigma2 returns 2·Σx²/256 of a super-block, the σ² of the importance
// weights.
func superSigma2(xbl []float32) float32 {
	return 2 * sumSquares(xbl[:QK_K]) / QK_K
}

// EncodeIQ3_XXS encodes x (a whole number of blocks) into y as ggml's
// quantize_iq3_xxs: with qw nil as quantize_row_iq3_xxs_ref (weights x²),
// otherwise weighting each element by qw (the importance matrix, one weight
// per element).
func EncodeIQ3_XXS(y []byte, x []float32, qw []float32) {
	g := iq3XXSGrid()
	var s iq3Sub
	eachSuperBlock(y, x, qw, IQ3_XXSBytes, func(b []byte, xbl, qwl []float32) {
		clear(b)
		sigma2 := superSigma2(xbl)
		var scales subScales
		for ib := range 8 {
			xb := xbl[32*ib : 32*ib+32]
			signs := s.prepare(xb, weightsAt(qwl, 32*ib), sigma2)
			// Only seven signs per eight are stored: where the count of
			// negatives is odd, the element of least weight·x² flips.
			for k := range 4 {
				if bits.OnesCount8(signs[k])%2 == 0 {
					continue
				}
				imin := 0
				minV := float32(s.weight[8*k] * xb[8*k] * xb[8*k])
				for i := 1; i < 8; i++ {
					if v := float32(float32(s.weight[8*k+i]*xb[8*k+i]) * xb[8*k+i]); v < minV {
						minV, imin = v, i
					}
				}
				s.xval[8*k+imin] = -s.xval[8*k+imin]
				signs[k] ^= 1 << imin
			}
			for k := range signs {
				signs[k] &= 127
			}
			max := maxOf(s.xval[:])
			if max < 1e-8 { // GROUP_MAX_EPS_IQ3_XXS
				scales.scale[ib] = 0
				s.L = [32]uint8{}
				continue
			}
			scale := s.search(g, max, 15, false)
			scale = positiveScale(scale, signs[:], 127)
			for k := range 8 {
				b[2+8*ib+k] = uint8(g.index[iq3Packed(s.L[4*k:])])
			}
			ss := uint32(signs[0]) | uint32(signs[1])<<7 | uint32(signs[2])<<14 | uint32(signs[3])<<21
			binary.LittleEndian.PutUint32(b[2+64+4*ib:], ss)
			scales.set(ib, scale)
		}
		if scales.max == 0 {
			clear(b)
			return
		}
		d, codes := scales.quantize(8, 31, 15)
		StoreF16(b, d*1.0125)
		for ib, l := range codes[:8] {
			p := b[2+64+4*ib:]
			binary.LittleEndian.PutUint32(p, binary.LittleEndian.Uint32(p)|uint32(l)<<28)
		}
	})
}

// iq3Packed returns the combination of the four levels at L.
func iq3Packed(L []uint8) int {
	return int(L[0]) | int(L[1])<<3 | int(L[2])<<6 | int(L[3])<<9
}

// EncodeIQ3_S encodes x (a whole number of blocks) into y as ggml's
// quantize_iq3_s: with qw nil as quantize_row_iq3_s_ref (weights x²),
// otherwise weighting each element by qw (the importance matrix, one weight
// per element).
//
// As in ggml, a sub-block whose elements are all zero does not advance the
// positions at which the following sub-blocks' qs and signs are written,
// while their qh bits and scales stay in place; decoders then read those
// sub-blocks' quants from the wrong place, and we write the same bytes.
func EncodeIQ3_S(y []byte, x []float32, qw []float32) {
	g := iq3SGrid()
	var s iq3Sub
	eachSuperBlock(y, x, qw, IQ3_SBytes, func(b []byte, xbl, qwl []float32) {
		clear(b)
		qs, qh, signsOut, scalesOut := b[2:66], b[66:74], b[74:106], b[106:110]
		sigma2 := superSigma2(xbl)
		var scales subScales
		for ib := range 8 {
			signs := s.prepare(xbl[32*ib:32*ib+32], weightsAt(qwl, 32*ib), sigma2)
			max := maxOf(s.xval[:])
			if max == 0 {
				scales.scale[ib] = 0
				continue
			}
			s.onGrid = [8]bool{}
			scale := s.search(g, max, 9, true)
			scale = positiveScale(scale, signs[:], 0xFF)
			for k := range 8 {
				i := g.index[iq3Packed(s.L[4*k:])]
				qs[k] = uint8(i)
				qh[ib] |= uint8(i>>8) << k
			}
			qs = qs[8:]
			copy(signsOut, signs[:])
			signsOut = signsOut[4:]
			scales.set(ib, scale)
		}
		if scales.max == 0 {
			return
		}
		d, codes := scales.quantize(8, 31, 15)
		StoreF16(b, d*1.033)
		for ib := 0; ib < 8; ib += 2 {
			scalesOut[ib/2] = codes[ib] | codes[ib+1]<<4
		}
	})
}

// iq3XXSSigns expands the seven stored signs of eight elements (bits 0-6
// of s) to eight sign bits, the eighth making the count of negatives even
// (ggml's ksigns_iq2xs).
func iq3XXSSigns(s uint32) uint8 {
	s &= 127
	return uint8(s) | uint8(bits.OnesCount32(s)&1)<<7
}

// iq3Group returns the grid point (four magnitudes, a byte each) and the
// four sign bits of group k (0-7) of sub-block ib of an IQ3_XXS block b
// or, with s, an IQ3_S block: the two formats differ only in where index,
// signs and scale are stored.
func iq3Group(b []byte, ib, k int, s bool) (grid uint32, signs uint8) {
	if s {
		return IQ3SGrid[iq3SIndex(b, ib, k)], b[74+4*ib+k/2] >> (4 * (k % 2)) & 0xF
	}
	aux := binary.LittleEndian.Uint32(b[2+64+4*ib:])
	return IQ3XXSGrid[b[2+8*ib+k]], iq3XXSSigns(aux>>(7*(k/2))) >> (4 * (k % 2)) & 0xF
}

// iq3ScaleCode returns the 4-bit scale code ls of sub-block ib of an
// IQ3_XXS block b or, with s, an IQ3_S block.
func iq3ScaleCode(b []byte, ib int, s bool) int {
	if s {
		return int(b[106+ib/2] >> (4 * (ib % 2)) & 0xf)
	}
	return int(binary.LittleEndian.Uint32(b[2+64+4*ib:]) >> 28)
}

// iq3SIndex returns the grid index of group k (0-7) of sub-block ib of the
// IQ3_S block b.
func iq3SIndex(b []byte, ib, k int) int {
	return int(b[2+8*ib+k]) | int(b[66+ib]>>k&1)<<8
}

// iq3Bytes is the block size of IQ3_XXS or, with s, IQ3_S.
func iq3Bytes(s bool) int {
	if s {
		return IQ3_SBytes
	}
	return IQ3_XXSBytes
}

// DecodeIQ3_XXS decodes the whole IQ3_XXS blocks of x into y (ggml's
// dequantize_row_iq3_xxs).
func DecodeIQ3_XXS(y []float32, x []byte) { decodeIQ3(y, x, false) }

// DecodeIQ3_S decodes the whole IQ3_S blocks of x into y (ggml's
// dequantize_row_iq3_s).
func DecodeIQ3_S(y []float32, x []byte) { decodeIQ3(y, x, true) }

// decodeIQ3 decodes IQ3_XXS (s false) or IQ3_S blocks; their sub-block
// scales are d·(ls+½)·½ and d·(2ls+1).
func decodeIQ3(y []float32, x []byte, s bool) {
	size := iq3Bytes(s)
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*size : (i+1)*size]
		d := LoadF16(b)
		out := y[i*QK_K : (i+1)*QK_K]
		for ib := range 8 {
			ls := iq3ScaleCode(b, ib, s)
			db := d * float32(1+2*ls)
			if !s {
				db = float32(d*(0.5+float32(ls))) * 0.5
			}
			for k := range 8 {
				grid, signs := iq3Group(b, ib, k, s)
				for j := range 4 {
					v := float32(db * float32(uint8(grid>>(8*j))))
					if signs&(1<<j) != 0 {
						v = -v
					}
					out[32*ib+4*k+j] = v
				}
			}
		}
	}
}

// DotIQ3_XXSQ8_K returns the dot product of n elements of an IQ3_XXS row w
// with a Q8_K activation row a, as ggml-cpu's generic
// ggml_vec_dot_iq3_xxs_q8_K: Σ_b d_b·dy_b·Σ_j (2ls_j+1)·Σ grid·sign·q8,
// times ¼ (the grid bytes are four times the levels, the scale (ls+½)·½).
func DotIQ3_XXSQ8_K(w, a []byte, n int) float32 { return 0.25 * dotIQ3(w, a, n, false) }

// DotIQ3_SQ8_K returns the dot product of n elements of an IQ3_S row w with
// a Q8_K activation row a, as ggml-cpu's generic ggml_vec_dot_iq3_s_q8_K:
// Σ_b d_b·dy_b·Σ_j (2ls_j+1)·Σ grid·sign·q8.
func DotIQ3_SQ8_K(w, a []byte, n int) float32 { return dotIQ3(w, a, n, true) }

// dotIQ3 is Σ_b d_b·dy_b·Σ_j (2ls_j+1)·Σ grid·sign·q8 over IQ3_XXS (s
// false) or IQ3_S rows.
func dotIQ3(w, a []byte, n int, s bool) float32 {
	return dotQ8KBlocks(w, a, n, iq3Bytes(s), func(x, q8, _ []byte) (float32, float32) {
		isum := 0
		for ib := range 8 {
			sub := 0
			for k := range 8 {
				grid, signs := iq3Group(x, ib, k, s)
				for j := range 4 {
					v := int(uint8(grid >> (8 * j)))
					if signs&(1<<j) != 0 {
						v = -v
					}
					sub += v * i8(q8[32*ib+4*k+j])
				}
			}
			isum += sub * (2*iq3ScaleCode(x, ib, s) + 1)
		}
		return LoadF16(x), float32(isum)
	})
}
