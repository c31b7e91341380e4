//go:build !purego

package kernels

import "golang.org/x/sys/unix"

// requestTileData asks Linux for the AMX tile data state
// (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), Linux 5.16 and
// later), which a process must hold before its first tile instruction.
func requestTileData() bool {
	const archReqXcompPerm, xfeatureXTileData = 0x1023, 18
	_, _, errno := unix.Syscall(unix.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureXTileData, 0)
	return errno == 0
}
