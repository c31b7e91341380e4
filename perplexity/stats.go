package perplexity

import (
	"fmt"
	"io"
	"math"
	"slices"
)

// meanAndUncertainty returns the mean of a quantity from its sum and sum of
// squares, and the standard error of that mean; the error is 0 for ten or
// fewer values (llama.cpp's rule).
func meanAndUncertainty(sum, sum2 float64, count int) (mean, stderr float64) {
	if count < 1 {
		return 0, 0
	}
	n := float64(count)
	mean = sum / n
	v := sum2/n - mean*mean
	if v > 0 && count > 10 {
		stderr = math.Sqrt(v / (n - 1))
	}
	return mean, stderr
}

// covariance is the covariance of the means of a and b (that is, the
// covariance of the values divided by count−1), 0 for fewer than 10 values.
func covariance(sumA, sumB, sumAB float64, count int) float64 {
	if count < 10 {
		return 0
	}
	n := float64(count)
	return (sumAB/n - (sumA/n)*(sumB/n)) / (n - 1)
}

// percentile interpolates linearly between the sorted values around
// fraction·(n−1), in float32 as llama.cpp does.
func percentile(sorted []float32, fraction float32) float32 {
	if fraction <= 0 {
		return sorted[0]
	}
	if fraction >= 1 {
		return sorted[len(sorted)-1]
	}
	p := fraction * float32(len(sorted)-1)
	ip := int(p)
	p -= float32(ip)
	next := min(ip+1, len(sorted)-1)
	return (1-p)*sorted[ip] + p*sorted[next]
}

// median is the middle value, or the mean of the two middle values.
func median(sorted []float32) float32 {
	n := len(sorted)
	if n%2 == 0 {
		return 0.5 * (sorted[n/2] + sorted[n/2-1])
	}
	return sorted[n/2]
}

// kldAccumulator sums what the KL statistics need, in the same precision as
// llama.cpp (each product in float32, each sum in float64).
type kldAccumulator struct {
	sumNLL, sumNLL2, sumNLLBase, sumNLLBase2, sumNLLNLLBase float64
	sumKLD, sumKLD2                                         float64
	sumPDiff, sumPDiff2, sumPDiff4                          float64
	maxPDiff                                                float32
	nSameTop, count                                         int

	kldValues, pDiffValues []float32
}

func (a *kldAccumulator) add(r positionKLD) {
	a.sumNLL += float64(r.nll)
	a.sumNLL2 += float64(r.nll * r.nll)
	a.sumNLLBase += float64(r.nllBase)
	a.sumNLLBase2 += float64(r.nllBase * r.nllBase)
	a.sumNLLNLLBase += float64(r.nll * r.nllBase)
	a.sumKLD += r.kld
	a.sumKLD2 += r.kld * r.kld
	a.sumPDiff += float64(r.pDiff)
	p2 := float64(r.pDiff * r.pDiff)
	a.sumPDiff2 += p2
	a.sumPDiff4 += p2 * p2
	a.maxPDiff = max(a.maxPDiff, float32(math.Abs(float64(r.pDiff))))
	if r.sameTop {
		a.nSameTop++
	}
	a.count++
	a.kldValues = append(a.kldValues, float32(r.kld))
	a.pDiffValues = append(a.pDiffValues, r.pDiff)
}

// ChunkLine is the running state printed after each chunk of a KL run.
type ChunkLine struct {
	Chunk                       int
	PPL, PPLErr                 float64
	LogPPLRatio, LogPPLRatioErr float64
	KLD, KLDErr                 float64
	RMSDeltaP, RMSDeltaPErr     float64
	SameTop, SameTopErr         float64
}

// logPPLs returns ln(PPL) of the quantized and of the base run, each with
// its uncertainty, and the covariance of the two.
func (a *kldAccumulator) logPPLs() (logPPL, logPPLErr, logBase, logBaseErr, cov float64) {
	logPPL, logPPLErr = meanAndUncertainty(a.sumNLL, a.sumNLL2, a.count)
	logBase, logBaseErr = meanAndUncertainty(a.sumNLLBase, a.sumNLLBase2, a.count)
	cov = covariance(a.sumNLL, a.sumNLLBase, a.sumNLLNLLBase, a.count)
	return logPPL, logPPLErr, logBase, logBaseErr, cov
}

// running computes the per-chunk line from the sums so far.
func (a *kldAccumulator) running(chunk int) ChunkLine {
	l := ChunkLine{Chunk: chunk}
	logPPL, logPPLErr, logBase, logBaseErr, cov := a.logPPLs()
	l.PPL = math.Exp(logPPL)
	l.PPLErr = l.PPL * logPPLErr
	l.LogPPLRatio = logPPL - logBase
	l.LogPPLRatioErr = math.Sqrt(logPPLErr*logPPLErr + logBaseErr*logBaseErr - 2*cov)
	l.KLD, l.KLDErr = meanAndUncertainty(a.sumKLD, a.sumKLD2, a.count)
	mse, mseErr := meanAndUncertainty(a.sumPDiff2, a.sumPDiff4, a.count)
	l.RMSDeltaP = math.Sqrt(mse)
	l.RMSDeltaPErr = 0.5 / l.RMSDeltaP * mseErr
	l.SameTop = float64(a.nSameTop) / float64(a.count)
	l.SameTopErr = math.Sqrt(l.SameTop * (1 - l.SameTop) / float64(a.count-1))
	return l
}

// ChunkHeader is the column header of the per-chunk KL lines.
const ChunkHeader = "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p\n"

// Format renders the line as llama-perplexity prints it.
func (l ChunkLine) Format() string {
	return fmt.Sprintf("%4d    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%    %6.3f ± %6.3f %%\n",
		l.Chunk, l.PPL, l.PPLErr, l.LogPPLRatio, l.LogPPLRatioErr, l.KLD, l.KLDErr,
		100*l.RMSDeltaP, 100*l.RMSDeltaPErr, 100*l.SameTop, 100*l.SameTopErr)
}

// MinTokensForStats is the number of scored tokens below which llama.cpp
// prints no statistics blocks.
const MinTokensForStats = 100

// KLDStats are the figures of llama-perplexity's three statistics blocks.
// Probabilities and their differences are fractions (0.95, not 95%).
type KLDStats struct {
	NTokens int `json:"n_tokens"`

	PPL            float64 `json:"ppl_q"`
	PPLErr         float64 `json:"ppl_q_stderr"`
	PPLBase        float64 `json:"ppl_base"`
	PPLBaseErr     float64 `json:"ppl_base_stderr"`
	LogPPLCor      float64 `json:"ln_ppl_correlation"`
	LogPPLRatio    float64 `json:"ln_ppl_ratio"`
	LogPPLRatioErr float64 `json:"ln_ppl_ratio_stderr"`
	PPLRatio       float64 `json:"ppl_ratio"`
	PPLRatioErr    float64 `json:"ppl_ratio_stderr"`
	PPLDiff        float64 `json:"ppl_diff"`
	PPLDiffErr     float64 `json:"ppl_diff_stderr"`

	KLD       float64 `json:"kld_mean"`
	KLDErr    float64 `json:"kld_mean_stderr"`
	KLDMax    float64 `json:"kld_max"`
	KLD999    float64 `json:"kld_p99_9"`
	KLD99     float64 `json:"kld_p99"`
	KLD95     float64 `json:"kld_p95"`
	KLD90     float64 `json:"kld_p90"`
	KLDMedian float64 `json:"kld_median"`
	KLD10     float64 `json:"kld_p10"`
	KLD5      float64 `json:"kld_p5"`
	KLD1      float64 `json:"kld_p1"`
	KLD01     float64 `json:"kld_p0_1"`
	KLDMin    float64 `json:"kld_min"`

	DeltaP       float64 `json:"delta_p_mean"`
	DeltaPErr    float64 `json:"delta_p_mean_stderr"`
	DeltaPMax    float64 `json:"delta_p_max"`
	DeltaP999    float64 `json:"delta_p_p99_9"`
	DeltaP99     float64 `json:"delta_p_p99"`
	DeltaP95     float64 `json:"delta_p_p95"`
	DeltaP90     float64 `json:"delta_p_p90"`
	DeltaP75     float64 `json:"delta_p_p75"`
	DeltaPMedian float64 `json:"delta_p_median"`
	DeltaP25     float64 `json:"delta_p_p25"`
	DeltaP10     float64 `json:"delta_p_p10"`
	DeltaP5      float64 `json:"delta_p_p5"`
	DeltaP1      float64 `json:"delta_p_p1"`
	DeltaP01     float64 `json:"delta_p_p0_1"`
	DeltaPMin    float64 `json:"delta_p_min"`
	RMSDeltaP    float64 `json:"delta_p_rms"`
	RMSDeltaPErr float64 `json:"delta_p_rms_stderr"`
	SameTop      float64 `json:"same_top_p"`
	SameTopErr   float64 `json:"same_top_p_stderr"`
}

// quantileStat is one quantile line of the KLD or Δp block: the fraction of
// the sorted values it stands at and the KLDStats field that keeps it.
type quantileStat struct {
	fraction float32
	value    *float64
}

// label is the line's name as llama-perplexity prints it ("99.9%").
func (q quantileStat) label() string {
	switch q.fraction {
	case 1:
		return "Maximum"
	case 0.5:
		return "Median"
	case 0:
		return "Minimum"
	}
	return fmt.Sprintf("%4.1f%%", 100*q.fraction)
}

// quantile is the value at fraction of the sorted values; the median is the
// mean of the two middle values, as llama.cpp takes it, not interpolated.
func quantile(sorted []float32, fraction float32) float32 {
	if fraction == 0.5 {
		return median(sorted)
	}
	return percentile(sorted, fraction)
}

// kldQuantiles lists the KLD block's quantile lines, top line first.
func (s *KLDStats) kldQuantiles() []quantileStat {
	return []quantileStat{
		{1, &s.KLDMax}, {0.999, &s.KLD999}, {0.990, &s.KLD99}, {0.950, &s.KLD95}, {0.900, &s.KLD90},
		{0.5, &s.KLDMedian},
		{0.100, &s.KLD10}, {0.050, &s.KLD5}, {0.010, &s.KLD1}, {0.001, &s.KLD01}, {0, &s.KLDMin},
	}
}

// deltaPQuantiles lists the Δp block's quantile lines, top line first: the
// KLD block's and the quartiles.
func (s *KLDStats) deltaPQuantiles() []quantileStat {
	return []quantileStat{
		{1, &s.DeltaPMax}, {0.999, &s.DeltaP999}, {0.990, &s.DeltaP99}, {0.950, &s.DeltaP95}, {0.900, &s.DeltaP90},
		{0.750, &s.DeltaP75}, {0.5, &s.DeltaPMedian}, {0.250, &s.DeltaP25},
		{0.100, &s.DeltaP10}, {0.050, &s.DeltaP5}, {0.010, &s.DeltaP1}, {0.001, &s.DeltaP01}, {0, &s.DeltaPMin},
	}
}

// summary computes the statistics blocks; ok is false (and nothing is
// computed) when fewer than MinTokensForStats tokens were scored.
func (a *kldAccumulator) summary() (s KLDStats, ok bool) {
	if a.count < MinTokensForStats {
		return s, false
	}
	s.NTokens = a.count
	kv := slices.Clone(a.kldValues)
	pv := slices.Clone(a.pDiffValues)
	slices.Sort(kv)
	slices.Sort(pv)

	// The figures of the per-chunk line, over all chunks.
	l := a.running(0)
	s.PPL, s.PPLErr = l.PPL, l.PPLErr
	s.LogPPLRatio, s.LogPPLRatioErr = l.LogPPLRatio, l.LogPPLRatioErr
	s.KLD, s.KLDErr = l.KLD, l.KLDErr
	s.RMSDeltaP, s.RMSDeltaPErr = l.RMSDeltaP, l.RMSDeltaPErr
	s.SameTop, s.SameTopErr = l.SameTop, l.SameTopErr

	_, logPPLErr, logBase, logBaseErr, cov := a.logPPLs()
	s.PPLBase = math.Exp(logBase)
	s.PPLBaseErr = s.PPLBase * logBaseErr
	s.LogPPLCor = cov / (logPPLErr * logBaseErr)
	s.PPLRatio = math.Exp(s.LogPPLRatio)
	s.PPLRatioErr = s.PPLRatio * s.LogPPLRatioErr
	pplCov := s.PPL * s.PPLBase * cov
	s.PPLDiff = s.PPL - s.PPLBase
	s.PPLDiffErr = math.Sqrt(s.PPLErr*s.PPLErr + s.PPLBaseErr*s.PPLBaseErr - 2*pplCov)

	for _, q := range s.kldQuantiles() {
		*q.value = float64(quantile(kv, q.fraction))
	}
	s.DeltaP, s.DeltaPErr = meanAndUncertainty(a.sumPDiff, a.sumPDiff2, a.count)
	for _, q := range s.deltaPQuantiles() {
		*q.value = float64(quantile(pv, q.fraction))
	}
	return s, true
}

// WriteText prints the three statistics blocks in llama-perplexity's format.
//
// One deliberate difference: build b4748 prints its 99% KLD line twice (a
// copy-paste slip where 95% was meant) and no 90% or 0.1% line; later
// llama.cpp builds print 95%, 90% and 0.1%, and so do we. Every other line is
// identical in label and format.
func (s *KLDStats) WriteText(w io.Writer) error {
	var b []byte
	p := func(format string, args ...any) { b = fmt.Appendf(b, format, args...) }
	p("====== Perplexity statistics ======\n")
	p("Mean PPL(Q)                   : %10.6f ± %10.6f\n", s.PPL, s.PPLErr)
	p("Mean PPL(base)                : %10.6f ± %10.6f\n", s.PPLBase, s.PPLBaseErr)
	p("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100*s.LogPPLCor)
	p("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", s.LogPPLRatio, s.LogPPLRatioErr)
	p("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", s.PPLRatio, s.PPLRatioErr)
	p("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", s.PPLDiff, s.PPLDiffErr)
	p("\n")
	p("====== KL divergence statistics ======\n")
	p("Mean    KLD: %10.6f ± %10.6f\n", s.KLD, s.KLDErr)
	for _, q := range s.kldQuantiles() {
		p("%-7s KLD: %10.6f\n", q.label(), *q.value)
	}
	p("\n")
	p("====== Token probability statistics ======\n")
	p("Mean    Δp: %6.3f ± %5.3f %%\n", 100*s.DeltaP, 100*s.DeltaPErr)
	for _, q := range s.deltaPQuantiles() {
		p("%-7s Δp: %6.3f%%\n", q.label(), 100*(*q.value))
	}
	p("RMS Δp    : %6.3f ± %5.3f %%\n", 100*s.RMSDeltaP, 100*s.RMSDeltaPErr)
	p("Same top p: %6.3f ± %5.3f %%\n", 100*s.SameTop, 100*s.SameTopErr)
	_, err := w.Write(b)
	return err
}
