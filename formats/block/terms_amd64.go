//go:build !purego

package block

// termsAVX2 selects the assembly terms (terms_amd64.s). formats/block
// imports only the standard library (the kernel generator builds it in
// its own module), so it asks CPUID itself rather than x/sys/cpu.
var termsAVX2 = hasAVX2()

// hasAVX2 reports whether the CPU has AVX2 and the OS saves the YMM
// registers.
func hasAVX2() bool

//go:noescape
func qkx2TermsAVX2(x, w, codes, wl, wll, wxl *[qkx2Width]float32, iscale, m float32, nmax int32)

//go:noescape
func qkx2ErrAVX2(codes, x, w, out *[qkx2Width]float32, scale, min float32)

//go:noescape
func qxTermsAVX2(x, w, wxl, wll *[qxWidth]float32, iscale float32, nmax int32)

func qkx2Terms(x, w, codes, wl, wll, wxl *[qkx2Width]float32, iscale, m float32, nmax int32) {
	if termsAVX2 {
		qkx2TermsAVX2(x, w, codes, wl, wll, wxl, iscale, m, nmax)
		return
	}
	qkx2TermsGo(x, w, codes, wl, wll, wxl, iscale, m, nmax)
}

func qkx2Err(codes, x, w, out *[qkx2Width]float32, scale, min float32) {
	if termsAVX2 {
		qkx2ErrAVX2(codes, x, w, out, scale, min)
		return
	}
	qkx2ErrGo(codes, x, w, out, scale, min)
}

func qxTerms(x, w, wxl, wll *[qxWidth]float32, iscale float32, nmax int32) {
	if termsAVX2 {
		qxTermsAVX2(x, w, wxl, wll, iscale, nmax)
		return
	}
	qxTermsGo(x, w, wxl, wll, iscale, nmax)
}
