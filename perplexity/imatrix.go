package perplexity

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"time"

	"github.com/llqt/llqt/kernels"
	"github.com/llqt/llqt/quant"
)

// An ObservableContext is a Context whose weight products can be watched
// (eval.Context.Observe): the importance-matrix run needs every product's
// input.
type ObservableContext interface {
	Context
	Observe(f func(name string, x []float32, rows, cols int))
}

// ImatrixOptions are an importance-matrix run's settings, llama-imatrix's.
type ImatrixOptions struct {
	// NCtx is the chunk length (-c); 0 means 512.
	NCtx int
	// MaxChunks limits the chunks (--chunks); ≤0 means all.
	MaxChunks int
	// SkipChunks drops that many chunks from the start of the text
	// (--chunk).
	SkipChunks int
	// ProcessOutput collects output.weight too (--process-output).
	ProcessOutput bool
	// NoPPL skips the running perplexity (--no-ppl).
	NoPPL bool
	// BOS replaces the first token of each chunk when AddBOS is set.
	BOS    int32
	AddBOS bool
	// Threads for the log-softmax work; 0 means GOMAXPROCS.
	Threads int
	// Out receives "[i]ppl," per chunk and the final estimate.
	Out io.Writer
	// Progress, if set, is called after each chunk.
	Progress func(done, total int)
	// Save, if set, is called after every chunk whose number is a multiple
	// of SaveEvery (llama-imatrix's --output-frequency), with the chunks
	// done, so that a long run leaves a usable file behind.
	Save      func(chunks int) error
	SaveEvery int
}

// ImatrixResult is what a run measured besides the statistics.
type ImatrixResult struct {
	NChunks int     `json:"n_chunks"`
	NCtx    int     `json:"n_ctx"`
	NTokens int     `json:"n_tokens"`
	Entries int     `json:"entries"`
	PPL     float64 `json:"ppl"`        // NaN with NoPPL
	PPLErr  float64 `json:"ppl_stderr"` // NaN with NoPPL or one scored token
	Seconds float64 `json:"seconds"`
	// TokensPerSecond counts every evaluated token.
	TokensPerSecond float64 `json:"tokens_per_second"`
}

// Imatrix runs llama-imatrix's method over tokens and adds what it
// collects to stats: the text is cut into chunks of NCtx tokens, each
// evaluated from an empty cache with BOS first and logits for every
// position; every product with at least 16 activation rows whose weight is
// in a block ("blk.*", and output.weight with ProcessOutput) adds its
// input's squares to that weight's statistics. The running perplexity is
// llama-perplexity's (positions NCtx/2 … NCtx−2 of each chunk).
func Imatrix(ctx context.Context, c ObservableContext, nVocab int, tokens []int32, stats *quant.ImatrixStats, opt ImatrixOptions) (*ImatrixResult, error) {
	if opt.NCtx <= 0 {
		opt.NCtx = DefaultNCtx
	}
	if opt.Threads <= 0 {
		opt.Threads = runtime.GOMAXPROCS(0)
	}
	if opt.SkipChunks > 0 {
		if (opt.SkipChunks+2)*opt.NCtx >= len(tokens) {
			return nil, fmt.Errorf("%w: after skipping %d chunks (--chunk) fewer than two chunks of %d tokens are left of %d",
				ErrTooShort, opt.SkipChunks, opt.NCtx, len(tokens))
		}
		tokens = tokens[opt.SkipChunks*opt.NCtx:]
	}
	if len(tokens) < 2*opt.NCtx {
		return nil, fmt.Errorf("%w: it tokenizes to %d tokens, and a context of %d needs at least %d (two chunks, llama-imatrix's rule); use a longer text or a smaller -c",
			ErrTooShort, len(tokens), opt.NCtx, 2*opt.NCtx)
	}
	if err := checkVocabRange(tokens, nVocab); err != nil {
		return nil, err
	}
	var collectErr error
	c.Observe(func(name string, x []float32, rows, cols int) {
		if collectErr != nil || rows < 16 {
			return // llama-imatrix skips products of fewer than 16 rows
		}
		if !strings.HasPrefix(name, "blk.") && !(opt.ProcessOutput && name == "output.weight") {
			return
		}
		collectErr = stats.Add(name, x, rows, cols)
	})
	defer c.Observe(nil)

	nChunk := NumChunks(len(tokens), opt.NCtx, opt.MaxChunks)
	res := &ImatrixResult{NChunks: nChunk, NCtx: opt.NCtx, NTokens: len(tokens), PPL: math.NaN(), PPLErr: math.NaN()}
	first := opt.NCtx / 2
	scored := scoredPerChunk(opt.NCtx)
	nll := make([]float64, scored)
	chunk := make([]int32, opt.NCtx)
	var totals nllTotals
	start := time.Now()
	for i := range nChunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		copy(chunk, tokens[i*opt.NCtx:(i+1)*opt.NCtx])
		if opt.AddBOS {
			chunk[0] = opt.BOS
		}
		c.Reset()
		logits, err := c.Decode(chunk, true)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i+1, err)
		}
		if collectErr != nil {
			return nil, fmt.Errorf("chunk %d: %w", i+1, collectErr)
		}
		if !opt.NoPPL {
			next := tokens[i*opt.NCtx+first+1 : (i+1)*opt.NCtx]
			kernels.Parallel(opt.Threads, scored, func(j int) {
				nll[j] = tokenNLL(logits[(first+j)*nVocab:(first+j+1)*nVocab], next[j])
			})
			for _, v := range nll {
				totals.add(v)
			}
			if opt.Out != nil {
				fmt.Fprintf(opt.Out, "[%d]%.4f,", i+1, math.Exp(totals.mean()))
			}
		}
		if opt.Progress != nil {
			opt.Progress(i+1, nChunk)
		}
		if opt.Save != nil && opt.SaveEvery > 0 && (i+1)%opt.SaveEvery == 0 {
			if err := opt.Save(i + 1); err != nil {
				return nil, err
			}
		}
	}
	res.Seconds, res.TokensPerSecond = throughput(start, nChunk*opt.NCtx)
	res.Entries = stats.Len()
	if !opt.NoPPL && totals.count > 0 {
		res.PPL, res.PPLErr = totals.estimate()
		if opt.Out != nil {
			fmt.Fprintln(opt.Out)
		}
		printFinalEstimate(opt.Out, res.PPL, res.PPLErr)
	}
	return res, nil
}
