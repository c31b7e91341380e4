package quant

import (
	"sync"

	"github.com/llqt/llqt/formats/ggml"
)

// QuantizeParallel is Quantize with the rows split into contiguous ranges
// encoded by up to workers goroutines. The bytes are the same as
// Quantize's for any worker count; an error names the first bad row.
func QuantizeParallel(t ggml.Type, src []float32, ne0 int, imatrix []float32, workers int) ([]byte, error) {
	rs, err := RowSize(t, ne0)
	if err != nil {
		return nil, err
	}
	nrows := len(src) / ne0
	if workers < 1 {
		workers = 1
	}
	if workers > nrows {
		workers = nrows
	}
	if workers <= 1 || len(src)%ne0 != 0 {
		return Quantize(t, src, ne0, imatrix)
	}
	dst := make([]byte, nrows*rs)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := nrows*w/workers, nrows*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = quantizeRows(t, dst[lo*rs:hi*rs], src[lo*ne0:hi*ne0], ne0, imatrix, lo)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err // the lowest range's error: the first bad row
		}
	}
	return dst, nil
}
