//go:build purego || !amd64

package kernels

// hasAVX2 reports whether the assembly kernels are in use.
const hasAVX2 = false

func availableSets() []string { return []string{SetPureGo} }

func install(string) { useGo() }
