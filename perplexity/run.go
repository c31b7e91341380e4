package perplexity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/llqt/llqt/kernels"
)

// Model is what perplexity needs from an inference engine.
type Model interface {
	// NVocab is the number of logits per position.
	NVocab() int
	// NewContext makes an evaluation context holding up to nCtx positions.
	// Contexts of one model must be usable from different goroutines at once.
	NewContext(nCtx int) (Context, error)
}

// Context evaluates one sequence.
type Context interface {
	// Reset empties the cache; the next Decode starts at position 0.
	Reset()
	// Decode appends tokens at the next positions and returns their logits:
	// len(tokens)×NVocab values when allLogits is set, else only the last
	// position's NVocab values.
	Decode(tokens []int32, allLogits bool) ([]float32, error)
}

// Defaults of llama-perplexity.
const (
	DefaultNCtx   = 512
	DefaultNBatch = 2048
)

// Options are a run's settings.
type Options struct {
	// NCtx is the chunk length in tokens (llama.cpp -c); 0 means 512.
	NCtx int
	// NBatch is the most tokens one Decode call gets (llama.cpp -b); 0 means
	// 2048. When it holds several chunks, that many chunks are evaluated at
	// once in separate contexts. The results do not depend on it.
	NBatch int
	// Parallel is the number of chunks evaluated at once, each in its own
	// context; 0 means as many as NBatch holds (max(1, NBatch/NCtx)), as
	// llama.cpp puts that many sequences in one batch. The results do not
	// depend on it.
	Parallel int
	// MaxChunks limits the number of chunks (llama.cpp --chunks); ≤0 means all.
	// A KL-divergence run takes its chunks from the base file and honours
	// MaxChunks too.
	MaxChunks int
	// Threads is the number of goroutines for the log-softmax work; 0 means
	// GOMAXPROCS. The results do not depend on it.
	Threads int
	// BOS replaces the first token of each chunk when AddBOS is set (the
	// vocabulary's add_bos_token).
	BOS    int32
	AddBOS bool
	// Out receives the running output: "[i]ppl," per chunk and the final
	// estimate, or the per-chunk KL lines and the statistics blocks. Nil
	// prints nothing.
	Out io.Writer
	// Progress, if set, is called after each chunk.
	Progress func(done, total int)
	// OutputType is llama-perplexity's --ppl-output-type: 0 prints the
	// running estimate as "[i]ppl,", 1 one line per chunk: the chunk's first
	// token index, the running PPL, mean NLL and its standard error.
	OutputType int
	// BaseOut, if set, receives the KL-divergence base file of the run
	// (Perplexity only). The caller owns the file and commits it only when the
	// run succeeds.
	BaseOut io.Writer
}

func (o *Options) normalize() {
	if o.NCtx <= 0 {
		o.NCtx = DefaultNCtx
	}
	if o.NBatch <= 0 {
		o.NBatch = DefaultNBatch
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
}

// Result is a run's outcome.
type Result struct {
	// PPL and PPLStderr are the final estimate and its ± as llama.cpp prints
	// them (for a KL run: PPL(Q) and its ±).
	PPL       float64 `json:"ppl"`
	PPLStderr float64 `json:"ppl_stderr"`
	// MeanNLL is ln PPL.
	MeanNLL float64 `json:"mean_nll"`
	// NCtx, NBatch: the settings used. NChunks chunks of NCtx tokens were
	// evaluated, of the NTokens the text tokenized to.
	NCtx          int `json:"n_ctx"`
	NBatch        int `json:"n_batch"`
	NChunks       int `json:"n_chunks"`
	NTokens       int `json:"n_tokens"`
	NTokensScored int `json:"n_tokens_scored"`
	// Seconds is the wall time of the evaluation; TokensPerSecond counts every
	// evaluated token (NChunks·NCtx), as llama.cpp's prompt-eval rate does.
	Seconds         float64 `json:"seconds"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	// ChunkNLL is each chunk's mean NLL over its scored tokens.
	ChunkNLL []float64 `json:"-"`
	// KLD holds the statistics blocks of a KL run with at least
	// MinTokensForStats tokens scored.
	KLD *KLDStats `json:"kld,omitempty"`
}

// ErrTooShort is returned when the text does not fill two chunks.
var ErrTooShort = errors.New("text too short")

// PrepareText applies llama-perplexity's reading of the text file: one
// trailing "\n" is dropped.
func PrepareText(raw []byte) string {
	s := string(raw)
	if len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}

// NumChunks is the number of chunks a run over nTokens tokens evaluates.
func NumChunks(nTokens, nCtx, maxChunks int) int {
	n := nTokens / nCtx
	if maxChunks > 0 {
		n = min(n, maxChunks)
	}
	return n
}

// Perplexity evaluates tokens (the whole text, tokenized with BOS when the
// vocabulary adds it) as llama-perplexity does.
func Perplexity(ctx context.Context, m Model, tokens []int32, opt Options) (*Result, error) {
	opt.normalize()
	nVocab := m.NVocab()
	if err := checkPerplexityTokens(tokens, opt.NCtx, nVocab); err != nil {
		return nil, err
	}
	nChunk := NumChunks(len(tokens), opt.NCtx, opt.MaxChunks)
	ev, err := newChunkEvaluator(m, opt)
	if err != nil {
		return nil, err
	}
	defer ev.close()

	var base *BaseWriter
	if opt.BaseOut != nil {
		base, err = NewBaseWriter(opt.BaseOut, opt.NCtx, nVocab, tokens[:nChunk*opt.NCtx])
		if err != nil {
			return nil, err
		}
	}

	scored := scoredPerChunk(opt.NCtx)
	res := &Result{NCtx: opt.NCtx, NBatch: opt.NBatch, NChunks: nChunk, NTokens: len(tokens)}
	nll := make([]float64, scored)
	var rows []uint16
	if base != nil {
		rows = make([]uint16, scored*rowLen(nVocab))
	}
	var totals nllTotals
	start := time.Now()
	err = ev.run(ctx, nChunk, func(i int) []int32 { return tokens[i*opt.NCtx : (i+1)*opt.NCtx] },
		func(i int, logits []float32) error {
			next := tokens[i*opt.NCtx+ev.first+1 : (i+1)*opt.NCtx]
			kernels.Parallel(opt.Threads, scored, func(j int) {
				row := logits[j*nVocab : (j+1)*nVocab]
				if base != nil {
					// The base-writing path of llama.cpp gets the NLL in float32.
					nll[j] = float64(encodeLogProbs(rows[j*rowLen(nVocab):(j+1)*rowLen(nVocab)], row, next[j]))
				} else {
					nll[j] = tokenNLL(row, next[j])
				}
			})
			if base != nil {
				if err := base.WriteChunk(rows); err != nil {
					return err
				}
			}
			var chunkSum float64
			for _, v := range nll {
				totals.add(v)
				chunkSum += v
			}
			res.ChunkNLL = append(res.ChunkNLL, chunkSum/float64(scored))
			if opt.Out != nil {
				printRunning(opt.Out, opt.OutputType, i, opt.NCtx, &totals)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	if base != nil {
		if err := base.Close(); err != nil {
			return nil, err
		}
	}
	res.Seconds, res.TokensPerSecond = throughput(start, nChunk*opt.NCtx)
	res.NTokensScored = totals.count
	mean := totals.mean()
	res.MeanNLL = mean
	ppl, stderr := totals.estimate()
	res.PPL = ppl
	if opt.Out != nil {
		fmt.Fprintln(opt.Out)
	}
	if math.IsNaN(res.PPL) || math.IsInf(res.PPL, 0) {
		return nil, fmt.Errorf("the perplexity is not finite (mean NLL %g): the model gives some scored token no probability", mean)
	}
	if !math.IsNaN(stderr) {
		res.PPLStderr = stderr
	}
	printFinalEstimate(opt.Out, ppl, stderr)
	return res, nil
}

// checkPerplexityTokens applies llama-perplexity's rule that the text fills
// at least two chunks, and checks that every token is in the vocabulary.
func checkPerplexityTokens(tokens []int32, nCtx, nVocab int) error {
	if len(tokens) < 2*nCtx {
		return fmt.Errorf("%w: it tokenizes to %d tokens, and perplexity with a context of %d needs at least %d (two chunks, llama-perplexity's rule); use a longer text or a smaller -c",
			ErrTooShort, len(tokens), nCtx, 2*nCtx)
	}
	return checkVocabRange(tokens, nVocab)
}

// checkVocabRange fails on the first token outside the vocabulary, which
// would index past the logits.
func checkVocabRange(tokens []int32, nVocab int) error {
	for i, t := range tokens {
		if t < 0 || int(t) >= nVocab {
			return fmt.Errorf("token %d is %d, outside the model's vocabulary of %d", i, t, nVocab)
		}
	}
	return nil
}

// nllTotals accumulates the scored tokens' negative log-likelihoods (sum,
// sum of squares, count), from which llama-perplexity's running and final
// estimates come.
type nllTotals struct {
	sum, sum2 float64
	count     int
}

func (t *nllTotals) add(nll float64) {
	t.sum += nll
	t.sum2 += nll * nll
	t.count++
}

// mean is the mean NLL, the log of the perplexity.
func (t *nllTotals) mean() float64 { return t.sum / float64(t.count) }

// estimate is llama-perplexity's final estimate: PPL = exp(mean NLL), and
// its ± = sqrt((mean(nll²)−mean(nll)²)/(count−1))·PPL, NaN when every token
// scored the same (or only one was scored).
func (t *nllTotals) estimate() (ppl, stderr float64) {
	mean := t.mean()
	ppl = math.Exp(mean)
	stderr = math.NaN()
	if v := t.sum2/float64(t.count) - mean*mean; v > 0 && t.count > 1 {
		stderr = math.Sqrt(v/float64(t.count-1)) * ppl
	}
	return ppl, stderr
}

// throughput is the seconds since start and the tokens per second they
// make (0 when no time was measured).
func throughput(start time.Time, tokens int) (seconds, tokensPerSecond float64) {
	seconds = time.Since(start).Seconds()
	if seconds > 0 {
		tokensPerSecond = float64(tokens) / seconds
	}
	return seconds, tokensPerSecond
}

// printFinalEstimate prints llama-perplexity's last line (nothing when w is
// nil).
func printFinalEstimate(w io.Writer, ppl, stderr float64) {
	switch {
	case w == nil:
	case math.IsNaN(stderr):
		fmt.Fprintf(w, "Final estimate: PPL = %.4f (no uncertainty: every token scored the same)\n", ppl)
	default:
		fmt.Fprintf(w, "Final estimate: PPL = %.4f +/- %.5f\n", ppl, stderr)
	}
}

// KLDivergence evaluates the model on the base file's tokens and compares
// its distributions with the base's, as llama-perplexity --kl-divergence
// does. opt.NCtx, when set, must equal the base file's n_ctx.
func KLDivergence(ctx context.Context, m Model, base *BaseReader, opt Options) (*Result, error) {
	if opt.NCtx > 0 && opt.NCtx != base.NCtx {
		return nil, fmt.Errorf("%s was computed with n_ctx %d, but -c is %d: drop -c or use -c %d", base.name, base.NCtx, opt.NCtx, base.NCtx)
	}
	opt.NCtx = base.NCtx
	opt.normalize()
	nVocab := m.NVocab()
	if nVocab != base.NVocab {
		return nil, fmt.Errorf("%s holds a vocabulary of %d, the model has %d: the base file comes from a different model family", base.name, base.NVocab, nVocab)
	}
	if base.NChunk == 0 {
		return nil, fmt.Errorf("%s holds no chunks", base.name)
	}
	nChunk := base.NChunk
	if opt.MaxChunks > 0 {
		nChunk = min(nChunk, opt.MaxChunks)
	}
	ev, err := newChunkEvaluator(m, opt)
	if err != nil {
		return nil, err
	}
	defer ev.close()
	scored := scoredPerChunk(opt.NCtx)
	nv := rowLen(nVocab)
	res := &Result{NCtx: opt.NCtx, NBatch: opt.NBatch, NChunks: nChunk, NTokens: len(base.Tokens)}
	acc := &kldAccumulator{}
	pos := make([]positionKLD, scored)
	var rows []uint16
	if opt.Out != nil {
		fmt.Fprint(opt.Out, ChunkHeader)
	}
	start := time.Now()
	err = ev.run(ctx, nChunk, func(i int) []int32 { return base.Tokens[i*opt.NCtx : (i+1)*opt.NCtx] },
		func(i int, logits []float32) error {
			var err error
			if rows, err = base.NextChunk(rows); err != nil {
				return err
			}
			next := base.Tokens[i*opt.NCtx+ev.first+1 : (i+1)*opt.NCtx]
			kernels.Parallel(opt.Threads, scored, func(j int) {
				pos[j] = comparePosition(logits[j*nVocab:(j+1)*nVocab], rows[j*nv:(j+1)*nv], next[j])
			})
			var chunkSum float64
			for _, p := range pos {
				acc.add(p)
				chunkSum += float64(p.nll)
			}
			res.ChunkNLL = append(res.ChunkNLL, chunkSum/float64(scored))
			if opt.Out != nil {
				fmt.Fprint(opt.Out, acc.running(i+1).Format())
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	res.Seconds, res.TokensPerSecond = throughput(start, nChunk*opt.NCtx)
	res.NTokensScored = acc.count
	logPPL, logPPLErr := meanAndUncertainty(acc.sumNLL, acc.sumNLL2, acc.count)
	res.MeanNLL = logPPL
	res.PPL = math.Exp(logPPL)
	res.PPLStderr = res.PPL * logPPLErr
	if opt.Out != nil {
		fmt.Fprintln(opt.Out)
	}
	if s, ok := acc.summary(); ok {
		res.KLD = &s
		if opt.Out != nil {
			if err := s.WriteText(opt.Out); err != nil {
				return nil, err
			}
		}
	} else if opt.Out != nil {
		fmt.Fprintf(opt.Out, "only %d tokens scored: no statistics below %d (llama.cpp's rule)\n", acc.count, MinTokensForStats)
	}
	return res, nil
}

// chunkEvaluator decodes chunks and hands over the logits of their scored
// positions, in chunk order, evaluating up to par chunks at once.
type chunkEvaluator struct {
	nCtx, piece, first, nVocab int
	bos                        int32
	addBOS                     bool
	ctxs                       []Context
	bufs                       [][]float32
	toks                       [][]int32
	progress                   func(done, total int)
}

func newChunkEvaluator(m Model, opt Options) (*chunkEvaluator, error) {
	nSeq := max(1, opt.NBatch/opt.NCtx)
	if opt.Parallel > 0 {
		nSeq = opt.Parallel
	}
	e := &chunkEvaluator{
		nCtx:   opt.NCtx,
		piece:  min(opt.NBatch, opt.NCtx),
		first:  opt.NCtx / 2,
		nVocab: m.NVocab(),
		bos:    opt.BOS,
		addBOS: opt.AddBOS,

		progress: opt.Progress,
	}
	if e.nVocab < 1 {
		return nil, fmt.Errorf("model reports a vocabulary of %d", e.nVocab)
	}
	for range nSeq {
		c, err := m.NewContext(opt.NCtx)
		if err != nil {
			e.close()
			return nil, fmt.Errorf("creating a %d-token context: %w", opt.NCtx, err)
		}
		e.ctxs = append(e.ctxs, c)
		e.bufs = append(e.bufs, make([]float32, scoredPerChunk(opt.NCtx)*e.nVocab))
		e.toks = append(e.toks, make([]int32, opt.NCtx))
	}
	return e, nil
}

// close releases the contexts.
func (e *chunkEvaluator) close() {
	for _, c := range e.ctxs {
		closeContext(c)
	}
}

// closeContext releases a context that holds resources (the engine's
// worker goroutines); other contexts need nothing.
func closeContext(c Context) {
	if cl, ok := c.(interface{ Close() }); ok {
		cl.Close()
	}
}

// run evaluates chunks 0…n−1; chunk(i) gives chunk i's tokens as stored
// (the first is replaced by BOS here), and consume gets the logits of its
// scored positions (rows first…n_ctx−2) in order.
func (e *chunkEvaluator) run(ctx context.Context, n int, chunk func(int) []int32,
	consume func(i int, logits []float32) error) error {
	for g := 0; g < n; g += len(e.ctxs) {
		k := min(len(e.ctxs), n-g)
		errs := make([]error, k)
		var wg sync.WaitGroup
		for s := range k {
			copy(e.toks[s], chunk(g+s))
			if e.addBOS {
				e.toks[s][0] = e.bos
			}
			wg.Go(func() { errs[s] = e.decode(ctx, s) })
		}
		wg.Wait()
		for s := range k {
			if errs[s] != nil {
				return fmt.Errorf("chunk %d: %w", g+s+1, errs[s])
			}
		}
		for s := range k {
			if err := consume(g+s, e.bufs[s]); err != nil {
				return fmt.Errorf("chunk %d: %w", g+s+1, err)
			}
			if e.progress != nil {
				e.progress(g+s+1, n)
			}
		}
	}
	return nil
}

// decode runs one chunk through context s in pieces of e.piece tokens,
// keeping the logits of the scored rows.
func (e *chunkEvaluator) decode(ctx context.Context, s int) error {
	c, toks, dst := e.ctxs[s], e.toks[s], e.bufs[s]
	c.Reset()
	last := e.nCtx - 1 // rows first … last−1 are scored
	for p0 := 0; p0 < e.nCtx; p0 += e.piece {
		if err := ctx.Err(); err != nil {
			return err
		}
		p1 := min(p0+e.piece, e.nCtx)
		want := p1 > e.first && p0 < last
		out, err := c.Decode(toks[p0:p1], want)
		if err != nil {
			return fmt.Errorf("decoding positions %d–%d: %w", p0, p1-1, err)
		}
		if !want {
			continue
		}
		if len(out) != (p1-p0)*e.nVocab {
			return fmt.Errorf("decoding positions %d–%d: engine returned %d logits, want %d", p0, p1-1, len(out), (p1-p0)*e.nVocab)
		}
		r0, r1 := max(p0, e.first), min(p1, last)
		copy(dst[(r0-e.first)*e.nVocab:(r1-e.first)*e.nVocab], out[(r0-p0)*e.nVocab:(r1-p0)*e.nVocab])
	}
	return nil
}

// printRunning prints the running estimate after chunk i as
// llama-perplexity does for --ppl-output-type 0 and 1.
func printRunning(w io.Writer, outputType, i, nCtx int, t *nllTotals) {
	av := t.mean()
	if outputType == 0 {
		fmt.Fprintf(w, "[%d]%.4f,", i+1, math.Exp(av))
		return
	}
	av2 := t.sum2/float64(t.count) - av*av
	if av2 > 0 && t.count > 1 {
		av2 = math.Sqrt(av2 / float64(t.count-1))
	} else {
		av2 = 0 // a single token or identical scores: no spread to report
	}
	fmt.Fprintf(w, "%8d  %.4f  %f  %f\n", i*nCtx, math.Exp(av), av, av2)
}

// PerplexityStrided is llama-perplexity's --ppl-stride method: windows of
// NCtx+stride/2 tokens (llama-perplexity widens the context by half the
// stride) start every stride tokens, each is evaluated from an empty
// cache as it stands (no BOS is put in front: llama.cpp b4748 swaps BOS in
// only after the window was evaluated), and the last stride tokens of each
// window are scored. MaxChunks limits the windows.
func PerplexityStrided(ctx context.Context, m Model, tokens []int32, stride int, opt Options) (*Result, error) {
	opt.normalize()
	if stride <= 0 {
		return nil, fmt.Errorf("--ppl-stride %d: the stride must be positive", stride)
	}
	if stride >= opt.NCtx {
		return nil, fmt.Errorf("--ppl-stride %d: the stride must be smaller than the context (-c %d)", stride, opt.NCtx)
	}
	opt.NCtx += stride / 2
	nVocab := m.NVocab()
	if err := checkPerplexityTokens(tokens, opt.NCtx, nVocab); err != nil {
		return nil, err
	}
	nChunk := NumStrided(len(tokens), opt.NCtx-stride/2, stride, opt.MaxChunks)
	c, err := m.NewContext(opt.NCtx)
	if err != nil {
		return nil, fmt.Errorf("creating a %d-token context: %w", opt.NCtx, err)
	}
	defer closeContext(c)
	res := &Result{NCtx: opt.NCtx, NBatch: opt.NBatch, NChunks: nChunk, NTokens: len(tokens)}
	logits := make([]float32, opt.NCtx*nVocab)
	var totals nllTotals
	start := time.Now()
	for i := range nChunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w := tokens[i*stride : i*stride+opt.NCtx]
		c.Reset()
		for p0 := 0; p0 < opt.NCtx; p0 += opt.NBatch {
			p1 := min(p0+opt.NBatch, opt.NCtx)
			out, err := c.Decode(w[p0:p1], true)
			if err != nil {
				return nil, fmt.Errorf("window %d (tokens %d–%d): %w", i+1, i*stride, i*stride+opt.NCtx-1, err)
			}
			copy(logits[p0*nVocab:], out[:(p1-p0)*nVocab])
		}
		var chunkSum float64
		for j := opt.NCtx - stride - 1; j < opt.NCtx-1; j++ {
			v := tokenNLL(logits[j*nVocab:(j+1)*nVocab], w[j+1])
			totals.add(v)
			chunkSum += v
		}
		res.ChunkNLL = append(res.ChunkNLL, chunkSum/float64(stride))
		if opt.Out != nil {
			if opt.OutputType == 0 {
				fmt.Fprintf(opt.Out, "[%d]%.4f,", i+1, math.Exp(totals.mean()))
			} else {
				fmt.Fprintf(opt.Out, "%8d  %.4f\n", i*stride, math.Exp(totals.mean()))
			}
		}
		if opt.Progress != nil {
			opt.Progress(i+1, nChunk)
		}
	}
	res.Seconds, res.TokensPerSecond = throughput(start, nChunk*opt.NCtx)
	res.NTokensScored = totals.count
	res.MeanNLL = totals.mean()
	ppl, stderr := totals.estimate()
	res.PPL = ppl
	if math.IsNaN(res.PPL) || math.IsInf(res.PPL, 0) {
		return nil, fmt.Errorf("the perplexity is not finite (mean NLL %g): the model gives some scored token no probability", res.MeanNLL)
	}
	if !math.IsNaN(stderr) {
		res.PPLStderr = stderr // llama-perplexity's strided method prints 0 for none
	}
	if opt.Out != nil {
		fmt.Fprintln(opt.Out)
		fmt.Fprintf(opt.Out, "Final estimate: PPL = %.4f +/- %.5f\n", res.PPL, res.PPLStderr)
	}
	return res, nil
}

// NumStrided is the number of windows PerplexityStrided evaluates.
func NumStrided(nTokens, nCtx, stride, maxChunks int) int {
	window := nCtx + stride/2
	n := max(0, (nTokens-window+stride-1)/stride)
	if maxChunks > 0 {
		n = min(n, maxChunks)
	}
	return n
}
