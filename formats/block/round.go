package block

import "math"

// NearestInt rounds to the nearest integer, halves to even, with ggml's
// nearest_int trick: adding 1.5·2^23 leaves the rounded integer in the low
// mantissa bits. It is exact for |f| ≤ 4194303; outside that range (and for
// NaN and infinities) it returns the same meaningless value nearest_int
// does, which keeps encoded bytes identical even for degenerate inputs.
func NearestInt(f float32) int32 {
	v := f + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}
