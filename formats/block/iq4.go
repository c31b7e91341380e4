package block

// The non-linear 4-bit formats: each 4-bit index q selects a value of
// IQ4NLValues, so that the 16 levels sit closer together near zero, where
// weights are dense. All fields are little-endian.
//
//	IQ4_NL (18 bytes): d | qs[16]
//	    32 elements: w = d·IQ4NLValues[q]; qs packed as Q4_0's
//	IQ4_XS (136 bytes): d | scales_h (u16) | scales_l[4] | qs[128]
//	    256 elements in 8 sub-blocks of 32 with 6-bit scales ls (offset
//	    32): the low 4 bits in the nibbles of scales_l (sub-block j in
//	    byte j/2, low nibble first), the high 2 bits in bits 2j, 2j+1 of
//	    scales_h; w = d·(ls−32)·IQ4NLValues[q]; qs packed as Q4_0's per
//	    sub-block; the activation format is Q8_K
const (
	QK4_NL = 32

	IQ4_NLBytes = 2 + QK4_NL/2
	IQ4_XSBytes = 2 + 2 + QK_K/64 + QK_K/2
)

// IQ4NLValues are the 16 levels of IQ4_NL and IQ4_XS (ggml's
// kvalues_iq4nl).
var IQ4NLValues = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}
