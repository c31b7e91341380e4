package eval

import "math"

// ropeParams is one RoPE variant of a model: its frequency base and linear
// scale, and optional per-pair divisors of the angle (Llama 3's rope_freqs;
// Phi-3's LongRoPE factors, long ones used when the context exceeds the
// original training context, short ones otherwise).
type ropeParams struct {
	base, scale float32
	freqs       []float32
	long        []float32
}

// rope rotates pairs of each head by a position-dependent angle: adjacent
// pairs (x[2i], x[2i+1]) in llama.cpp's "normal" mode, which applies to GGUF
// llama files because the converter permuted Q and K rows into that layout;
// halves (x[i], x[i+n_rot/2]) in NEOX mode (the other architectures).
type rope struct {
	neox       bool
	nRot       int
	thetaScale float32
	freqScale  float32
	extFactor  float32
	attnFactor float32
	corrLow    float32
	corrHigh   float32
	freqs      []float32 // per pair divisors (llama 3 rope_freqs), or nil
}

// newRope prepares variant p for a context of nCtx tokens (which picks
// LongRoPE's factors as llama.cpp does: long when n_ctx per sequence exceeds
// the original context).
func newRope(h Hparams, p ropeParams, neox bool, nCtx int) rope {
	freqs := p.freqs
	if p.long != nil && nCtx > h.RopeOrigCtx {
		freqs = p.long
	}
	r := rope{
		neox:       neox,
		nRot:       h.NRot,
		thetaScale: float32(math.Pow(float64(p.base), -2.0/float64(h.NRot))),
		freqScale:  p.scale,
		extFactor:  h.YarnExtFactor,
		attnFactor: h.RopeAttnFactor,
		freqs:      freqs,
	}
	// YaRN's correction range: the dimensions whose wavelength falls
	// between beta_fast and beta_slow rotations over the original context.
	corrDim := func(nRotations float32) float64 {
		return float64(h.NRot) * math.Log(float64(h.RopeOrigCtx)/(float64(nRotations)*2*math.Pi)) /
			(2 * math.Log(float64(p.base)))
	}
	r.corrLow = float32(max(0, math.Floor(corrDim(h.YarnBetaFast))))
	r.corrHigh = float32(min(float64(h.NRot-1), math.Ceil(corrDim(h.YarnBetaSlow))))
	return r
}

// cache fills cs with (cos, sin) for each pair at position pos.
func (r *rope) cache(cs []float32, pos int) {
	theta := float32(pos)
	for i := 0; i < r.nRot; i += 2 {
		ff := float32(1)
		if r.freqs != nil {
			ff = r.freqs[i/2]
		}
		extrap := theta / ff
		interp := r.freqScale * extrap
		angle := interp
		mscale := r.attnFactor
		if r.extFactor != 0 {
			y := (float32(i/2) - r.corrLow) / max(0.001, r.corrHigh-r.corrLow)
			ramp := (1 - min(1, max(0, y))) * r.extFactor
			angle = interp*(1-ramp) + extrap*ramp
			mscale *= 1 + 0.1*float32(math.Log(float64(1/r.freqScale)))
		}
		cs[i] = float32(math.Cos(float64(angle))) * mscale
		cs[i+1] = float32(math.Sin(float64(angle))) * mscale
		theta *= r.thetaScale
	}
}

// apply rotates nHeads heads of headDim elements in x with the (cos, sin)
// table cs.
func (r *rope) apply(x []float32, nHeads, headDim int, cs []float32) {
	if r.neox {
		half := r.nRot / 2
		for h := 0; h < nHeads; h++ {
			v := x[h*headDim : h*headDim+r.nRot]
			for i := 0; i < half; i++ {
				c, s := cs[2*i], cs[2*i+1]
				x0, x1 := v[i], v[i+half]
				v[i] = x0*c - x1*s
				v[i+half] = x0*s + x1*c
			}
		}
		return
	}
	for h := 0; h < nHeads; h++ {
		v := x[h*headDim : h*headDim+r.nRot]
		for i := 0; i < r.nRot; i += 2 {
			c, s := cs[i], cs[i+1]
			x0, x1 := v[i], v[i+1]
			v[i] = x0*c - x1*s
			v[i+1] = x0*s + x1*c
		}
	}
}
