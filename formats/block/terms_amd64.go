//go:build !purego

package block

import "golang.org/x/sys/cpu"

//go:noescape
func qkx2TermsAVX2(x, w, codes, wl, wll, wxl *[qkx2Width]float32, iscale, m float32, nmax int32)

//go:noescape
func qkx2ErrAVX2(codes, x, w, out *[qkx2Width]float32, scale, min float32)

//go:noescape
func qxTermsAVX2(x, w, wxl, wll *[qxWidth]float32, iscale float32, nmax int32)

func init() {
	if cpu.X86.HasAVX2 {
		qkx2Terms, qkx2Err, qxTerms = qkx2TermsAVX2, qkx2ErrAVX2, qxTermsAVX2
	}
}
