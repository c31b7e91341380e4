package block

// The element-wise parts of a make_qkx2_quants step: the codes of one
// 32-value sub-block under a candidate scale and the weighted terms its
// sums add up, and the weighted squared errors of a fit. Each value is
// the same float32 operation sequence in any implementation, so an
// assembly version (terms_amd64.s) gives the same bits; only the sums,
// whose order matters, stay in Go.

// terms_amd64.s is generated with avo from the module in _asm (its own
// module, like the kernel generator, so that this package needs no avo);
// the Go declarations in terms_amd64.go are hand-written.
//go:generate sh -c "cd _asm && go run . -out ../terms_amd64.s"

// The dispatching functions (qkx2Terms, qkx2Err, qxTerms) live in
// terms_amd64.go and terms_other.go. They are plain functions rather than
// function variables: a call through a variable would make every array
// passed to it escape to the heap.

// qkx2TermsGo sets codes[i] = clamp(nearest(iscale·(x[i]−m)), 0, nmax),
// wl[i] = w[i]·codes[i], wll[i] = wl[i]·codes[i] and wxl[i] = wl[i]·x[i].
func qkx2TermsGo(x, w, codes, wl, wll, wxl *[qkx2Width]float32, iscale, m float32, nmax int32) {
	for i := range qkx2Width {
		f := float32(clampInt(NearestInt(iscale*(x[i]-m)), 0, nmax))
		codes[i] = f
		p := float32(w[i] * f)
		wl[i] = p
		wll[i] = float32(p * f)
		wxl[i] = float32(p * x[i])
	}
}

// qkx2ErrGo sets out[i] = w[i]·d² where d = scale·codes[i] + min − x[i].
func qkx2ErrGo(codes, x, w, out *[qkx2Width]float32, scale, min float32) {
	for i := range qkx2Width {
		d := float32(scale*codes[i]) + min - x[i]
		out[i] = float32(w[i] * float32(d*d))
	}
}

// qxTermsGo sets, for the codes l = clamp(nearest(iscale·x[i]), −nmax,
// nmax−1) of make_qx_quants as float32 f, wxl[i] = w[i]·x[i]·f and
// wll[i] = w[i]·f·f.
func qxTermsGo(x, w, wxl, wll *[qxWidth]float32, iscale float32, nmax int32) {
	for i := range qxWidth {
		f := float32(clampInt(NearestInt(iscale*x[i]), -nmax, nmax-1))
		wxl[i] = float32(w[i] * x[i] * f)
		wll[i] = float32(w[i] * f * f)
	}
}
