package report

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/cpu"

	"github.com/llqt/llqt/internal/cpuinfo"
	"github.com/llqt/llqt/kernels"
)

// hashFile returns a file's size and sha256.
func hashFile(path string) (FileHash, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileHash{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return FileHash{}, fmt.Errorf("%s: %w", path, err)
	}
	return FileHash{Name: filepath.Base(path), Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// hashInput describes a model source. For a directory, every regular file
// at its top level (what a conversion reads) is hashed, and the digest is the
// sha256 of the "sha256  name\n" lines in name order, as sha256sum prints
// them.
func hashInput(path string) (Input, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Input{}, err
	}
	if !st.IsDir() {
		fh, err := hashFile(path)
		if err != nil {
			return Input{}, err
		}
		return Input{Path: path, Kind: "gguf", SHA256: fh.SHA256, Files: []FileHash{fh}}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return Input{}, err
	}
	in := Input{Path: path, Kind: "hf"}
	var list strings.Builder
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fh, err := hashFile(filepath.Join(path, e.Name()))
		if err != nil {
			return Input{}, err
		}
		in.Files = append(in.Files, fh)
		fmt.Fprintf(&list, "%s  %s\n", fh.SHA256, fh.Name)
	}
	sum := sha256.Sum256([]byte(list.String()))
	in.SHA256 = hex.EncodeToString(sum[:])
	return in, nil
}

// hostCPU describes the processor: its model name, the SIMD features llqt's
// kernels choose between and the kernel set in use.
func hostCPU() CPU {
	c := CPU{Model: cpuinfo.Model(), Cores: runtime.NumCPU(), Kernels: kernels.Active()}
	flags := map[string]bool{
		"sse4.2": cpu.X86.HasSSE42, "avx": cpu.X86.HasAVX, "avx2": cpu.X86.HasAVX2, "fma": cpu.X86.HasFMA,
		"f16c": cpu.X86.HasF16C, "avx512f": cpu.X86.HasAVX512F, "avx512bw": cpu.X86.HasAVX512BW,
		"avx512vnni": cpu.X86.HasAVX512VNNI, "avxvnni": cpu.X86.HasAVXVNNI,
		"amx_tile": cpu.X86.HasAMXTile, "amx_int8": cpu.X86.HasAMXInt8,
		"asimd": cpu.ARM64.HasASIMD, "asimddp": cpu.ARM64.HasASIMDDP, "sve": cpu.ARM64.HasSVE,
	}
	for f, ok := range flags {
		if ok {
			c.Flags = append(c.Flags, f)
		}
	}
	slices.Sort(c.Flags)
	return c
}
