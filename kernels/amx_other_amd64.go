//go:build !purego && !linux

package kernels

// requestTileData reports false outside Linux: llqt asks for the AMX tile
// state only through Linux's arch_prctl, so the AMX set stays off and the
// AVX-512 set runs instead.
func requestTileData() bool { return false }
