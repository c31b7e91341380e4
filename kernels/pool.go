package kernels

import (
	"sync"
	"sync/atomic"
)

// A small persistent worker pool: MatMul runs several times per layer per
// token, and waking parked workers is cheaper than starting goroutines on
// every call. Workers are started on demand up to the largest thread count
// asked for and then live for the life of the process, parked on work.
var pool struct {
	mu      sync.Mutex
	workers int
	work    chan func()
}

const maxWorkers = 256

func ensureWorkers(n int) {
	n = min(n, maxWorkers)
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if pool.work == nil {
		pool.work = make(chan func(), maxWorkers)
	}
	for ; pool.workers < n; pool.workers++ {
		go func() {
			for f := range pool.work {
				f()
			}
		}()
	}
}

// parallelFor calls fn(t) for every t in [0,tasks) using up to threads
// goroutines, the caller included, and returns when all calls have finished.
// Tasks are handed out one at a time, so uneven tasks balance.
func parallelFor(threads, tasks int, fn func(task int)) {
	helpers := min(threads, tasks) - 1
	if helpers <= 0 {
		for t := 0; t < tasks; t++ {
			fn(t)
		}
		return
	}
	helpers = min(helpers, maxWorkers)
	ensureWorkers(helpers)
	var next atomic.Int64
	var wg sync.WaitGroup
	run := func() {
		for {
			t := int(next.Add(1) - 1)
			if t >= tasks {
				return
			}
			fn(t)
		}
	}
	wg.Add(helpers)
	helper := func() { run(); wg.Done() }
	for i := 0; i < helpers; i++ {
		pool.work <- helper
	}
	run()
	wg.Wait()
}
