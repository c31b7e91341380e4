package block

// The scale searches are long chains of dependent float32 additions (the
// sums must be added in ggml's order to give its bytes), so one sub-block
// at a time leaves the CPU waiting on each addition's latency. The
// sub-blocks of a super-block are independent, so the searches below run
// four of them in lockstep: four chains in flight, each exactly the
// sequence of operations the one-sub-block function performs.

// qkx2Width is the sub-block length of the lockstep make_qkx2_quants.
const qkx2Width = 32

// makeQkx2Quants4 is makeQkx2Quants (n = 32, useMAD false) for the four
// sub-blocks x[k] under weights w[k], writing L[k] and returning each
// scale and negated min.
func makeQkx2Quants4(nmax int, x, w *[4][]float32, L *[4][]uint8, rmin, rdelta float32, nstep int) (scale, negMin [4]float32) {
	x0, x1, x2, x3 := (*[qkx2Width]float32)(x[0]), (*[qkx2Width]float32)(x[1]), (*[qkx2Width]float32)(x[2]), (*[qkx2Width]float32)(x[3])
	w0, w1, w2, w3 := (*[qkx2Width]float32)(w[0]), (*[qkx2Width]float32)(w[1]), (*[qkx2Width]float32)(w[2]), (*[qkx2Width]float32)(w[3])
	for k := range 4 {
		_ = L[k][:qkx2Width]
	}

	var mn, mx, sumW, sumX [4]float32
	var flat bool // some sub-block has max == min
	var isFlat [4]bool
	for k, xk := range [4]*[qkx2Width]float32{x0, x1, x2, x3} {
		mn[k], mx[k], sumW[k], sumX[k] = qkx2Start(xk[:], w[k][:qkx2Width])
		if mx[k] == mn[k] {
			isFlat[k], flat = true, true
		}
	}
	firstMin := mn
	nm := int32(nmax)
	fnmax := float32(nmax)

	// The first estimate: the range mapped onto [0, nmax].
	var best [4]float32
	for k, xk := range [4]*[qkx2Width]float32{x0, x1, x2, x3} {
		wk := (*[qkx2Width]float32)(w[k])
		Lk := (*[qkx2Width]uint8)(L[k])
		iscale := fnmax / (mx[k] - mn[k])
		scale[k] = 1 / iscale
		m := mn[k]
		var mad float32
		for i := range qkx2Width {
			l := uint8(clampInt(NearestInt(iscale*(xk[i]-m)), 0, nm))
			Lk[i] = l
			diff := float32(scale[k]*float32(l)) + m - xk[i]
			mad += float32(wk[i] * float32(diff*diff))
		}
		best[k] = mad
	}
	if nstep >= 1 {
		ws := [4]*[qkx2Width]float32{w0, w1, w2, w3}
		xs := [4]*[qkx2Width]float32{x0, x1, x2, x3}
		// Codes as float32 and the terms of the sums (qkx2Terms), then
		// the sums in order, two sub-blocks at a time: six chains.
		var codes, wl, wll, wxl, errs [4][qkx2Width]float32
		for is := 0; is <= nstep; is++ {
			step := rmin + float32(rdelta*float32(is)) + fnmax
			for k := range 4 {
				qkx2Terms(xs[k], ws[k], &codes[k], &wl[k], &wll[k], &wxl[k], step/(mx[k]-mn[k]), mn[k], nm)
			}
			var ts, tm [4]float32
			var ok [4]bool
			for h := 0; h < 4; h += 2 {
				la, lb, lla, llb, xla, xlb := &wl[h], &wl[h+1], &wll[h], &wll[h+1], &wxl[h], &wxl[h+1]
				var sla, slb, slla, sllb, sxla, sxlb float32
				for i := range qkx2Width {
					sla += la[i]
					slb += lb[i]
					slla += lla[i]
					sllb += llb[i]
					sxla += xla[i]
					sxlb += xlb[i]
				}
				ts[h], tm[h], ok[h] = qkx2Solve(sumW[h], sumX[h], sla, slla, sxla)
				ts[h+1], tm[h+1], ok[h+1] = qkx2Solve(sumW[h+1], sumX[h+1], slb, sllb, sxlb)
			}
			if !(ok[0] || ok[1] || ok[2] || ok[3]) {
				continue
			}
			for k := range 4 {
				qkx2Err(&codes[k], xs[k], ws[k], &errs[k], ts[k], tm[k])
			}
			e0, e1, e2, e3 := &errs[0], &errs[1], &errs[2], &errs[3]
			var mad0, mad1, mad2, mad3 float32
			for i := range qkx2Width {
				mad0 += e0[i]
				mad1 += e1[i]
				mad2 += e2[i]
				mad3 += e3[i]
			}
			for k, mad := range [4]float32{mad0, mad1, mad2, mad3} {
				if ok[k] && mad < best[k] {
					Lk := (*[qkx2Width]uint8)(L[k])
					for i, f := range &codes[k] {
						Lk[i] = uint8(f)
					}
					best[k] = mad
					scale[k] = ts[k]
					mn[k] = tm[k]
				}
			}
		}
	}
	for k := range 4 {
		negMin[k] = -mn[k]
	}
	if flat {
		// A constant sub-block (max == min) is all zero codes with scale
		// 0, whatever the lanes computed for it meanwhile.
		for k := range 4 {
			if isFlat[k] {
				clear(L[k][:qkx2Width])
				scale[k], negMin[k] = 0, -firstMin[k]
			}
		}
	}
	return scale, negMin
}

// qkx2Solve is one weighted least-squares fit of make_qkx2_quants: the
// scale and min for the codes whose sums are given, ok false when the
// system is singular (D ≤ 0).
func qkx2Solve(sumW, sumX, sumL, sumL2, sumXL float32) (scale, min float32, ok bool) {
	D := float32(sumW*sumL2) - float32(sumL*sumL)
	if !(D > 0) {
		return 0, 0, false
	}
	scale = (float32(sumW*sumXL) - float32(sumX*sumL)) / D
	min = (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
	if min > 0 {
		min = 0
		scale = sumXL / sumL2
	}
	return scale, min, true
}

// qxWidth is the sub-block length of the lockstep make_qx_quants.
const qxWidth = 16

// makeQxQuants4 is makeQxQuants (n = 16, rmseType 1) for the four
// sub-blocks x[k], under importance weights qw[k] when qw is not nil and
// x² otherwise, writing L[k] and returning each scale.
func makeQxQuants4(nmax int, x *[4][]float32, L *[4][]int8, qw *[4][]float32) (scale [4]float32) {
	var xs [4]*[qxWidth]float32
	var ws [4][qxWidth]float32
	var maxv, iscale0 [4]float32
	var live [4]bool
	nm := int32(nmax)
	for k := range 4 {
		xk := (*[qxWidth]float32)(x[k])
		xs[k] = xk
		Lk := (*[qxWidth]int8)(L[k])
		mx, amax := maxAbsSigned(xk[:])
		if amax < groupMaxEps {
			clear(Lk[:])
			continue
		}
		live[k] = true
		maxv[k] = mx
		iscale0[k] = float32(-nmax) / mx
		if qw != nil {
			copy(ws[k][:], qw[k][:qxWidth])
		} else {
			for i, v := range xk {
				ws[k][i] = v * v
			}
		}
	}
	var best [4]float32
	for k := range 4 {
		if !live[k] {
			continue
		}
		xk, wk, Lk := xs[k], &ws[k], (*[qxWidth]int8)(L[k])
		var sumlx, suml2 float32
		for i, v := range xk {
			l := clampInt(NearestInt(iscale0[k]*v), -nm, nm-1)
			Lk[i] = int8(l + nm)
			w := wk[i]
			fl := float32(l)
			sumlx += float32(w * v * fl)
			suml2 += float32(w * fl * fl)
		}
		if suml2 != 0 {
			scale[k] = sumlx / suml2
		}
		best[k] = scale[k] * sumlx
	}
	// Flat lanes compute on harmless stand-ins and are never updated.
	for k := range 4 {
		if !live[k] {
			xs[k] = new([qxWidth]float32)
			maxv[k] = 1
		}
	}
	fnmax := float32(nmax)
	var wxl, wll [4][qxWidth]float32 // the terms of the sums (qxTerms)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		step := fnmax + float32(float32(0.1)*float32(is))
		is0, is1, is2, is3 := -step/maxv[0], -step/maxv[1], -step/maxv[2], -step/maxv[3]
		for k, isk := range [4]float32{is0, is1, is2, is3} {
			qxTerms(xs[k], &ws[k], &wxl[k], &wll[k], isk, nm)
		}
		var lx0, lx1, lx2, lx3, ll0, ll1, ll2, ll3 float32
		for i := range qxWidth {
			lx0 += wxl[0][i]
			lx1 += wxl[1][i]
			lx2 += wxl[2][i]
			lx3 += wxl[3][i]
			ll0 += wll[0][i]
			ll1 += wll[1][i]
			ll2 += wll[2][i]
			ll3 += wll[3][i]
		}
		for k, s := range [4][2]float32{{lx0, ll0}, {lx1, ll1}, {lx2, ll2}, {lx3, ll3}} {
			sumlx, suml2 := s[0], s[1]
			if live[k] && suml2 > 0 && sumlx*sumlx > best[k]*suml2 {
				isk := [4]float32{is0, is1, is2, is3}[k]
				Lk := (*[qxWidth]int8)(L[k])
				for i, v := range xs[k] {
					Lk[i] = int8(nm + clampInt(NearestInt(isk*v), -nm, nm-1))
				}
				scale[k] = sumlx / suml2
				best[k] = scale[k] * sumlx
			}
		}
	}
	return scale
}
