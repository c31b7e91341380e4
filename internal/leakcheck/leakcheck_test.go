package leakcheck

import (
	"runtime"
	"testing"
	"time"
)

func TestSettleWaitsForExitingGoroutines(t *testing.T) {
	before := 0
	done := make(chan struct{})
	go func() { time.Sleep(20 * time.Millisecond); close(done) }()
	_ = before
	defer Check(t)()
	<-done
}

func TestSettleReportsAStuckGoroutine(t *testing.T) {
	// Measure the baseline once earlier tests' goroutines have finished
	// exiting, or one of them ending would hide the stuck one.
	base := runtime.NumGoroutine()
	for {
		time.Sleep(50 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == base {
			break
		}
		base = n
	}
	stop := make(chan struct{})
	go func() { <-stop }()
	if _, ok := settle(base, 30*time.Millisecond); ok {
		t.Error("a blocked goroutine was not reported")
	}
	close(stop)
	if _, ok := settle(base, time.Second); !ok {
		t.Error("goroutine count did not return to the baseline after it ended")
	}
}
