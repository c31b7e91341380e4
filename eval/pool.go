package eval

import (
	"sync"
	"sync/atomic"
)

// workerPool runs one job on every worker and waits for all of them. The
// workers are started once per Context so that a decode step starts no
// goroutines and allocates nothing; a job pulls task indices from a shared
// counter, which balances heads of unequal cost.
type workerPool struct {
	jobs chan func(worker int)
	wg   sync.WaitGroup
	n    int
	once sync.Once
}

func newWorkerPool(n int) *workerPool {
	p := &workerPool{jobs: make(chan func(int)), n: n}
	for w := 1; w < n; w++ {
		go func() {
			for job := range p.jobs {
				job(w)
				p.wg.Done()
			}
		}()
	}
	return p
}

// run calls job on every worker (the caller's goroutine is worker 0).
func (p *workerPool) run(job func(worker int)) {
	p.wg.Add(p.n - 1)
	for w := 1; w < p.n; w++ {
		p.jobs <- job
	}
	job(0)
	p.wg.Wait()
}

func (p *workerPool) close() { p.once.Do(func() { close(p.jobs) }) }

// taskCounter hands out task indices 0..n-1 to competing workers.
type taskCounter struct{ next atomic.Int64 }

func (c *taskCounter) reset()    { c.next.Store(0) }
func (c *taskCounter) take() int { return int(c.next.Add(1) - 1) }
