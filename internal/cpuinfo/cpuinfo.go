// Package cpuinfo names the processor that speed figures were measured on.
// Speed claims are only meaningful with it: the same kernel can be ten times
// slower on one x86-64 vendor than on another.
package cpuinfo

import (
	"os"
	"runtime"
	"strings"
)

// Model is the CPU model name as lscpu shows it ("model name" in
// /proc/cpuinfo on x86, "Model" on some ARM kernels), or GOARCH where the
// system does not say.
func Model() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	return modelFrom(string(b))
}

func modelFrom(cpuinfo string) string {
	for _, line := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if k = strings.TrimSpace(k); (k == "model name" || k == "Model") && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
