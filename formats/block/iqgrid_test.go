package block

import (
	"encoding/binary"
	"hash/fnv"
	"testing"
)

// TestIQGridMatchesGGML checks each grid index against the one ggml's
// iq2xs_init_impl builds: the FNV-1a hashes below are of its kmap_q2xs (int32
// little-endian) and of its kneighbors_q2xs array, as a C harness around
// llama.cpp b4748's function printed them.
func TestIQGridMatchesGGML(t *testing.T) {
	for _, tc := range []struct {
		name            string
		grid            func() *IQGrid
		neighbours      int
		index, neighbor uint64
	}{
		{"IQ2_XXS", IQ2XXSGridIndex, 417400, 0xc9aaccb2f398af07, 0xa75bd9e2420d5d13},
		{"IQ2_XS", IQ2XSGridIndex, 551722, 0xb38ddb443a8784b1, 0xa7d0f454a49b36e7},
		{"IQ1", IQ1GridIndex, 1375339, 0xd020080b4c7cb7af, 0x3582afeead46ff16},
		{"IQ2_S", IQ2SGridIndex, 209100, 0x6197b6f9100d06db, 0x663036b82366cac0},
	} {
		g := tc.grid()
		h := fnv.New64a()
		for _, v := range g.index {
			h.Write(binary.LittleEndian.AppendUint32(nil, uint32(v)))
		}
		if got := h.Sum64(); got != tc.index {
			t.Errorf("%s: index hash %#x, ggml %#x", tc.name, got, tc.index)
		}
		if len(g.neighbours) != tc.neighbours {
			t.Errorf("%s: %d neighbour entries, ggml %d", tc.name, len(g.neighbours), tc.neighbours)
		}
		h = fnv.New64a()
		for _, v := range g.neighbours {
			h.Write(binary.LittleEndian.AppendUint16(nil, v))
		}
		if got := h.Sum64(); got != tc.neighbor {
			t.Errorf("%s: neighbour hash %#x, ggml %#x", tc.name, got, tc.neighbor)
		}
	}
}

// TestIQGridLookups checks the accessors on one grid: every point's key
// finds it, off-grid keys list points at non-decreasing distance, and keys
// beyond the map are off the grid without neighbours.
func TestIQGridLookups(t *testing.T) {
	g := IQ2XSGridIndex()
	if g.Len() != 512 {
		t.Fatalf("Len %d", g.Len())
	}
	for i := 0; i < g.Len(); i++ {
		p := g.Point(i)
		var L [8]int8
		for k, v := range p {
			L[k] = (v - 1) / 2
		}
		if got := g.Index(IQGridKey(L[:])); got != i {
			t.Fatalf("point %d: key finds %d", i, got)
		}
		if g.Neighbours(IQGridKey(L[:])) != nil {
			t.Fatalf("point %d: on-grid key has neighbours", i)
		}
	}
	for u := 0; u < iqGridKeys; u += 97 {
		if g.Index(uint16(u)) >= 0 {
			continue
		}
		p := keyPoint(u)
		last := -1
		for _, j := range g.Neighbours(uint16(u)) {
			q := g.Point(int(j))
			d := 0
			for k := range p {
				e := int(p[k]) - int(q[k])
				d += e * e
			}
			if d < last {
				t.Fatalf("key %d: neighbours out of order", u)
			}
			last = d
		}
		if last < 0 {
			t.Fatalf("key %d: no neighbours", u)
		}
	}
	if g.Index(0xFFFF) != -1 || g.Neighbours(0xFFFF) != nil {
		t.Fatal("key beyond the map")
	}
}
