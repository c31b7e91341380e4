package perplexity

import (
	"math"

	"github.com/llqt/llqt/formats/block"
)

// The functions here reproduce llama-perplexity's arithmetic including the
// places where it works in float32 (max logit, the exponentials, the log of
// the sum in the quantized paths), so that our figures agree with llama.cpp's
// to the printed digits when the logits agree.

// expf is C's expf: exp in float32.
func expf(x float32) float32 { return float32(math.Exp(float64(x))) }

// maxOf returns the largest logit, compared as std::max does.
func maxOf(logits []float32) float32 {
	m := logits[0]
	for _, v := range logits[1:] {
		if m < v {
			m = v
		}
	}
	return m
}

// sumExp returns Σ expf(l − max), accumulated in double.
func sumExp(logits []float32, maxLogit float32) float64 {
	var s float64
	for _, v := range logits {
		s += float64(expf(v - maxLogit))
	}
	return s
}

// tokenNLL is −log p(tok) for one row of logits, as the plain perplexity run
// computes it: the log-softmax in double.
func tokenNLL(logits []float32, tok int32) float64 {
	maxLogit := maxOf(logits)
	s := sumExp(logits, maxLogit)
	return -(float64(logits[tok]-maxLogit) - math.Log(s))
}

// rowLen is the number of uint16 values one scored position takes in a
// "_logits_" file: two float32 (scale, min log-prob) and the log-probs, padded
// to an even count.
func rowLen(nVocab int) int { return 2*((nVocab+1)/2) + 4 }

// encodeLogProbs quantizes one row of logits into dst (rowLen(len(logits))
// values) as llama.cpp's base-file writer does and returns the token's NLL,
// computed as that writer computes it (in float32).
//
// Log-probs are kept over [max−16, max]: q = round((l − min)/scale) with
// scale = (max − min)/65535, so log p ≈ scale·q + minLogProb; anything at or
// below the floor is stored as 0.
func encodeLogProbs(dst []uint16, logits []float32, tok int32) float32 {
	maxLogit, minLogit := logits[0], logits[0]
	for _, v := range logits[1:] {
		if maxLogit < v {
			maxLogit = v
		}
		if v < minLogit {
			minLogit = v
		}
	}
	if floor := maxLogit - 16; minLogit < floor {
		minLogit = floor
	}
	logSumExp := float32(math.Log(sumExp(logits, maxLogit)))
	minLogProb := minLogit - maxLogit - logSumExp
	scale := (maxLogit - minLogit) / 65535
	sb, mb := math.Float32bits(scale), math.Float32bits(minLogProb)
	dst[0], dst[1] = uint16(sb), uint16(sb>>16)
	dst[2], dst[3] = uint16(mb), uint16(mb>>16)
	q := dst[4 : 4+len(logits)]
	if scale != 0 {
		inv := 1 / scale
		for i, v := range logits {
			if v > minLogit {
				// Truncation to 16 bits as the C assignment does.
				q[i] = uint16(block.NearestInt(inv * (v - minLogit)))
			} else {
				q[i] = 0
			}
		}
	} else {
		clear(q)
	}
	clear(dst[4+len(logits):])
	return maxLogit + logSumExp - logits[tok]
}

// decodeHeader returns a row's scale and minimum log-prob.
func decodeHeader(row []uint16) (scale, minLogProb float32) {
	scale = math.Float32frombits(uint32(row[0]) | uint32(row[1])<<16)
	minLogProb = math.Float32frombits(uint32(row[2]) | uint32(row[3])<<16)
	return scale, minLogProb
}

// positionKLD holds what one scored position contributes to the KL
// statistics.
type positionKLD struct {
	nll, nllBase float32 // −log p(tok) under the model and under the base
	kld          float64 // KL(base ‖ model), base log-probs below −16 left out
	pDiff        float32 // p(tok) − p_base(tok)
	sameTop      bool    // both put the highest probability on the same token
}

// comparePosition scores one row of logits against the base row (rowLen
// values) for the next token tok, as llama-perplexity --kl-divergence does.
func comparePosition(logits []float32, base []uint16, tok int32) positionKLD {
	maxLogit := logits[0]
	imax := 0
	for i, v := range logits[1:] {
		if v > maxLogit {
			maxLogit, imax = v, i+1
		}
	}
	logSumExp := float32(math.Log(sumExp(logits, maxLogit)))
	scale, minLogProb := decodeHeader(base)
	q := base[4 : 4+len(logits)]

	var r positionKLD
	r.nll = maxLogit + logSumExp - logits[tok]
	r.nllBase = -(scale*float32(q[tok]) + minLogProb)

	norm := maxLogit + logSumExp // log p_i = l_i − norm
	var sum float64
	imaxBase := -1
	var baseMax float32
	for i, qi := range q {
		pLogBase := scale*float32(qi) + minLogProb
		if i == 0 || pLogBase > baseMax {
			baseMax, imaxBase = pLogBase, i
		}
		if pLogBase > -16 {
			pBase := expf(pLogBase)
			sum += float64(pBase * (pLogBase - logits[i] + norm))
		}
	}
	r.kld = sum
	r.sameTop = imax == imaxBase
	r.pDiff = expf(-r.nll) - expf(-r.nllBase)
	return r
}
