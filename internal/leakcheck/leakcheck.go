// Package leakcheck fails a test that leaves goroutines running.
//
// It compares runtime.NumGoroutine before and after the code under test,
// allowing a short settle period for goroutines that are already on their
// way out, and prints every goroutine's stack when some stay. It needs no
// dependency; go.uber.org/goleak does the same with finer filtering, which
// llqt's tests (no background pools, no parallel subtests while checking)
// do not need.
package leakcheck

import (
	"runtime"
	"testing"
	"time"
)

// Settle is how long Check waits for goroutines to finish before failing.
var Settle = 2 * time.Second

// Check records the goroutine count and returns a function, to be deferred,
// that fails tb if more goroutines exist when it runs than before, once
// Settle has passed. Tests using it must not run in parallel with others.
func Check(tb testing.TB) func() {
	tb.Helper()
	before := runtime.NumGoroutine()
	return func() {
		tb.Helper()
		if n, ok := settle(before, Settle); !ok {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			tb.Errorf("leakcheck: %d goroutines before, %d after %v:\n%s", before, n, Settle, buf)
		}
	}
}

// settle polls until at most want goroutines run or timeout passes.
func settle(want int, timeout time.Duration) (int, bool) {
	deadline := time.Now().Add(timeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		n := runtime.NumGoroutine()
		if n <= want {
			return n, true
		}
		if time.Now().After(deadline) {
			return n, false
		}
		time.Sleep(wait)
	}
}
