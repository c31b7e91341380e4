package block

// The K-quants: super-blocks of 256 elements cut into sub-blocks of 16 or
// 32, whose scales (and mins) are quantized too, against the f16 super-block
// scale d (and dmin). All fields are little-endian.
//
//	Q2_K (84 bytes):  scales[16] | qs[64] | d dmin
//	    16 sub-blocks of 16; scales byte j: low nibble scale, high nibble
//	    min; q 2 bits: w = d·scale·q − dmin·min
//	Q3_K (110 bytes): hmask[32] | qs[64] | scales[12] | d
//	    16 sub-blocks of 16; 6-bit signed scales (offset 32) packed in 12
//	    bytes; q = 2 low bits from qs, the third from hmask, minus 4 unless
//	    the hmask bit is set: w = d·(scale−32)·q
//	Q4_K (144 bytes): d dmin | scales[12] | qs[128]
//	    8 sub-blocks of 32; 6-bit scales and mins packed in 12 bytes (see
//	    ScaleMinK4); q 4 bits: w = d·scale·q − dmin·min
//	Q5_K (176 bytes): d dmin | scales[12] | qh[32] | qs[128]
//	    as Q4_K with a fifth bit per element from qh
//	Q6_K (210 bytes): ql[128] | qh[64] | scales[16] | d
//	    16 sub-blocks of 16; int8 scales; q = 4 bits from ql and 2 from
//	    qh, minus 32: w = d·scale·q
//	Q8_K (292 bytes): d (float32) | qs[256] int8 | bsums[16] int16
//	    the activation format of the K-quant and IQ4_XS dots; bsums are
//	    the sums of each 16 quants
//
// In qs, each 64 (Q4_K, Q5_K) or 128 (Q2_K, Q3_K) elements take 32 bytes:
// the low nibble (or low bit pair) first, then the next ones.
const (
	QK_K = 256 // elements per K-quant super-block

	Q2_KBytes = QK_K/16 + QK_K/4 + 4
	Q3_KBytes = QK_K/8 + QK_K/4 + 12 + 2
	Q4_KBytes = 4 + 12 + QK_K/2
	Q5_KBytes = 4 + 12 + QK_K/8 + QK_K/2
	Q6_KBytes = QK_K/2 + QK_K/4 + QK_K/16 + 2
	Q8_KBytes = 4 + QK_K + QK_K/16*2
)

// ScaleMinK4 unpacks the 6-bit scale and min of sub-block j (of 8) from the
// 12 packed scale bytes of a Q4_K or Q5_K block: for j < 4 the low six bits
// of bytes j and j+4; otherwise the nibbles of byte j+4 with the top two
// bits of bytes j−4 and j as their high bits (ggml's get_scale_min_k4).
func ScaleMinK4(j int, scales []byte) (scale, min uint8) {
	if j < 4 {
		return scales[j] & 63, scales[j+4] & 63
	}
	return scales[j+4]&0xF | (scales[j-4]>>6)<<4, scales[j+4]>>4 | (scales[j]>>6)<<4
}
