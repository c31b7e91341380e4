package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// smallDisk mounts a 1 MiB tmpfs for the test, or skips when it cannot
// (not root, or no permission to mount in this container).
func smallDisk(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full-disk test needs root to mount a 1 MiB tmpfs; the unit tests cover a failing writer")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); the unit tests cover a failing writer", err, strings.TrimSpace(string(out)))
	}
	// Cleanups run last-in first-out: unmount before TempDir removes dir.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// checkDiskFull expects a clear "no space" error and nothing left on disk.
func checkDiskFull(t *testing.T, r result, disk string) {
	t.Helper()
	checkSane(t, r)
	if r.code == 0 {
		t.Fatalf("succeeded on a full disk: %v", r)
	}
	if !strings.Contains(r.stderr, "no space left on device") && !strings.Contains(r.stderr, "not enough space") {
		t.Errorf("error does not say the disk is full: %v", r)
	}
	if names := entries(t, disk); len(names) != 0 {
		t.Errorf("left on the full disk: %v", names)
	}
}

func TestDiskFullWriter(t *testing.T) {
	requireBuilt(t)
	disk := smallDisk(t)
	r := run(t, writerBin, filepath.Join(disk, "out.gguf"), "4", "0")
	checkDiskFull(t, r, disk)
}

func TestDiskFullQuantize(t *testing.T) {
	requireCommand(t, "quantize")
	disk := smallDisk(t)
	in := writeSynthLlama(t, t.TempDir())
	snap := snapshot(t, in)
	r := run(t, llqtBin, "quantize", in, filepath.Join(disk, "out.gguf"), "Q4_K_M")
	checkDiskFull(t, r, disk)
	checkUnchanged(t, snap, "quantize")
}

func TestDiskFullConvert(t *testing.T) {
	requireCommand(t, "convert")
	disk := smallDisk(t)
	in := synthHF(t, t.TempDir())
	snap := snapshot(t, in)
	r := run(t, llqtBin, "convert", in, filepath.Join(disk, "out.gguf"), "--outtype", "f32")
	checkDiskFull(t, r, disk)
	checkUnchanged(t, snap, "convert")
}
