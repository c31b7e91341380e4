package block

// The legacy formats: blocks of 32 elements with one f16 scale d (and, for
// the _1 formats, an f16 offset m). All fields are little-endian.
//
//	Q4_0 (18 bytes): d | qs[16]          w = d·(q − 8), q 4 bits
//	Q4_1 (20 bytes): d m | qs[16]        w = d·q + m, q 4 bits
//	Q5_0 (22 bytes): d | qh[4] | qs[16]  w = d·(q − 16), q 5 bits
//	Q5_1 (24 bytes): d m | qh[4] | qs[16]  w = d·q + m, q 5 bits
//	Q8_0 (34 bytes): d | qs[32]          w = d·q, q int8
//	Q8_1 (36 bytes): d s | qs[32]        w = d·q, s = d·Σq (an activation format)
//
// qs packs two 4-bit quants a byte: element j in the low nibble of byte j
// and element j+16 in the high nibble (j < 16). qh is a 32-bit word whose
// bit j is the fifth bit of element j. Q8_0 and Q8_1 are also the
// activation formats the dot products of the 4- and 5-bit formats take
// (Q8_1 for the ones with an offset).
const (
	QK = 32 // elements per legacy block (ggml's QK4_0 … QK8_1)

	Q4_0Bytes = 2 + QK/2
	Q4_1Bytes = 4 + QK/2
	Q5_0Bytes = 2 + 4 + QK/2
	Q5_1Bytes = 4 + 4 + QK/2
	Q8_0Bytes = 2 + QK
	Q8_1Bytes = 4 + QK
)
