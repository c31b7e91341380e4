//go:build purego || !amd64

package block

func qkx2Terms(x, w, codes, wl, wll, wxl *[qkx2Width]float32, iscale, m float32, nmax int32) {
	qkx2TermsGo(x, w, codes, wl, wll, wxl, iscale, m, nmax)
}

func qkx2Err(codes, x, w, out *[qkx2Width]float32, scale, min float32) {
	qkx2ErrGo(codes, x, w, out, scale, min)
}

func qxTerms(x, w, wxl, wll *[qxWidth]float32, iscale float32, nmax int32) {
	qxTermsGo(x, w, wxl, wll, iscale, nmax)
}
