package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// A persistent team of worker goroutines runs the parallel loops. Decoding one
// token runs a few hundred short parallel loops (a matrix-vector product of a
// small matrix takes tens of microseconds), so what matters is how fast idle
// workers notice new work and how fast the caller learns that the work is
// done:
//   - one job is published at a time through a single atomic word holding
//     the job's generation, its task count and the next unclaimed task;
//     workers claim tasks from it with compare-and-swap, and the caller
//     claims tasks too, so a worker that is slow to wake costs nothing but
//     its share of the work;
//   - the caller waits for the tasks to be finished, not for the workers to
//     check in;
//   - idle workers spin on the job word for a while before parking (as
//     ggml's thread pool polls before sleeping), and so does a caller whose
//     last tasks are still running elsewhere.
//
// Workers are started on demand up to the largest thread count asked for and
// live for the life of the process. Only one job runs at a time; a caller that
// finds the team busy (another goroutine's loop) runs its loop itself.
var team struct {
	busy sync.Mutex // held by the caller whose job is published

	// state is gen<<taskBits*2 | tasks<<taskBits | next.
	state   atomic.Uint64
	fn      func(task int) // the job; written before state publishes it
	helpers atomic.Int32   // workers that take part in the job (ids 1..helpers)
	done    atomic.Int64   // tasks of the job finished

	mu           sync.Mutex // guards the parking below and the worker count
	wake         *sync.Cond // workers park here waiting for a new generation
	finished     *sync.Cond // the caller parks here waiting for done
	sleepers     atomic.Int32
	callerAsleep atomic.Bool
	workers      int
}

const (
	taskBits = 20
	taskMask = 1<<taskBits - 1
	maxTasks = taskMask // tasks per job the packed state can hold

	maxWorkers = 256

	// spinTime is how long an idle worker (or a waiting caller) polls
	// before parking. It must bridge the serial stretches between the
	// products of one decode step (norms, SiLU over n_ff values, activation
	// quantization: tens of microseconds): TinyLlama Q4_K_M tg32 on 2
	// threads ran ~22 t/s with 5-50µs and 27-31 t/s with 100-300µs.
	spinTime = 200 * time.Microsecond
)

func init() {
	team.wake = sync.NewCond(&team.mu)
	team.finished = sync.NewCond(&team.mu)
}

func stateGen(s uint64) uint64 { return s >> (2 * taskBits) }

// ensureWorkers starts workers until there are n.
func ensureWorkers(n int) {
	n = min(n, maxWorkers)
	team.mu.Lock()
	defer team.mu.Unlock()
	for team.workers < n {
		team.workers++
		go worker(team.workers, stateGen(team.state.Load()))
	}
}

// worker id waits for job generations after seen and helps with them.
func worker(id int, seen uint64) {
	for {
		s := waitNewGen(seen)
		seen = stateGen(s)
		if id <= int(team.helpers.Load()) {
			work(seen)
		}
	}
}

// waitNewGen spins, then parks, until the job generation differs from seen,
// and returns the state.
func waitNewGen(seen uint64) uint64 {
	start := time.Now()
	for i := 1; ; i++ {
		if s := team.state.Load(); stateGen(s) != seen {
			return s
		}
		if i%64 == 0 {
			if time.Since(start) > spinTime {
				break
			}
			runtime.Gosched()
		}
	}
	team.mu.Lock()
	team.sleepers.Add(1)
	s := team.state.Load()
	for stateGen(s) == seen {
		team.wake.Wait()
		s = team.state.Load()
	}
	team.sleepers.Add(-1)
	team.mu.Unlock()
	return s
}

// work claims and runs tasks of generation gen until none are left.
func work(gen uint64) {
	// Finished tasks are counted here and published once, when no task is
	// left to claim: an atomic add per task bounced the counter's cache
	// line between the cores (2% of a prompt batch, whose attention runs
	// tens of thousands of tasks per layer). The caller waits for every
	// count, so no new job can start before this one is published.
	finished, total := 0, uint64(0)
	defer func() {
		if finished > 0 && team.done.Add(int64(finished)) == int64(total) && team.callerAsleep.Load() {
			team.mu.Lock()
			team.finished.Signal()
			team.mu.Unlock()
		}
	}()
	for {
		s := team.state.Load()
		if stateGen(s) != gen {
			return
		}
		tasks, next := s>>taskBits&taskMask, s&taskMask
		if next >= tasks {
			return
		}
		if !team.state.CompareAndSwap(s, s+1) {
			continue
		}
		// The claim succeeded, so the job is still the one published with
		// gen: its caller cannot replace fn before this task is done.
		team.fn(int(next))
		finished, total = finished+1, tasks
	}
}

// parallelFor calls fn(t) for every t in [0,tasks) using up to threads
// goroutines, the caller included, and returns when all calls have finished.
// Tasks are handed out one at a time, so uneven tasks balance.
func parallelFor(threads, tasks int, fn func(task int)) {
	helpers := min(threads, tasks, maxWorkers+1) - 1
	if helpers <= 0 || tasks > maxTasks || !team.busy.TryLock() {
		for t := 0; t < tasks; t++ {
			fn(t)
		}
		return
	}
	ensureWorkers(helpers)
	team.fn = fn
	team.helpers.Store(int32(helpers))
	team.done.Store(0)
	gen := stateGen(team.state.Load()) + 1
	team.state.Store(gen<<(2*taskBits) | uint64(tasks)<<taskBits)
	if team.sleepers.Load() > 0 {
		team.mu.Lock()
		team.wake.Broadcast()
		team.mu.Unlock()
	}
	work(gen)
	waitDone(int64(tasks))
	team.fn = nil
	team.busy.Unlock()
}

// waitDone spins, then parks, until tasks tasks of the job are finished.
func waitDone(tasks int64) {
	if team.done.Load() == tasks {
		return
	}
	start := time.Now()
	for i := 1; ; i++ {
		if team.done.Load() == tasks {
			return
		}
		if i%64 == 0 {
			if time.Since(start) > spinTime {
				break
			}
			runtime.Gosched()
		}
	}
	team.mu.Lock()
	team.callerAsleep.Store(true)
	for team.done.Load() != tasks {
		team.finished.Wait()
	}
	team.callerAsleep.Store(false)
	team.mu.Unlock()
}

// Parallel calls fn(t) for every t in [0,tasks) on up to threads goroutines
// (the caller's included) of the package's worker team, and returns when
// all calls have finished. Tasks are handed out one at a time, in order, to
// whichever goroutine is free, so fn must not depend on which goroutine runs
// it. fn may call MatMul with threads 1; a nested parallel loop runs on the
// calling goroutine.
func Parallel(threads, tasks int, fn func(task int)) { parallelFor(threads, tasks, fn) }
