package leakcheck

import (
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
	base, _ := settle(1<<30, 0)
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
