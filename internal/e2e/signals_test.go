package e2e

import (
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// interrupt runs bin until the atomic writer's temporary file for out
// appears (the run is writing its output), then sends sigs, one after the
// other. mid is false when the run ended before that moment came.
func interrupt(t *testing.T, out string, sigs []syscall.Signal, bin string, args ...string) (r result, mid bool) {
	t.Helper()
	p := start(t, bin, args...)
	exited := make(chan struct{})
	pollerDone := make(chan struct{})
	go func() {
		defer close(pollerDone)
		for len(tempFiles(t, out)) == 0 {
			select {
			case <-exited:
				return
			case <-time.After(time.Millisecond):
			}
			if time.Since(p.began) > 30*time.Second {
				return
			}
		}
		for _, s := range sigs {
			if p.cmd.Process.Signal(s) == nil {
				mid = true
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	r = p.wait(t)
	close(exited)
	<-pollerDone
	return r, mid
}

// checkInterrupted: a signalled run exits 130/143 and leaves nothing.
func checkInterrupted(t *testing.T, r result, mid bool, want int, out string) {
	t.Helper()
	if !mid {
		t.Skipf("the run finished before it could be interrupted: %v", r)
	}
	checkSane(t, r)
	if r.code != want {
		t.Errorf("exit code %d, want %d: %v", r.code, want, r)
	}
	if exists(out) {
		t.Errorf("interrupted run left its output %s", out)
	}
	if left := tempFiles(t, out); len(left) > 0 {
		t.Errorf("interrupted run left temporary files %v", left)
	}
}

// killAtRandom runs the command n times, SIGKILLing it at a random moment
// in [0, 1.2·full): the output path then holds nothing, or (when the run
// finished first) exactly the reference bytes. Only the writer's
// temporary files may stay, and they are removed between runs.
func killAtRandom(t *testing.T, n int, full time.Duration, out string, want [32]byte, bin string, args ...string) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("SIGKILL moments from seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	killed := 0
	for i := 0; i < n; i++ {
		delay := time.Duration(rng.Int64N(int64(full) * 6 / 5))
		p := start(t, bin, args...)
		timer := time.AfterFunc(delay, func() { _ = p.cmd.Process.Signal(syscall.SIGKILL) })
		r := p.wait(t)
		timer.Stop()
		switch {
		case r.code == 0:
			b, err := os.ReadFile(out)
			if err != nil || sha256.Sum256(b) != want {
				t.Errorf("run %d finished but %s is not the reference output (%v)", i, out, err)
			}
		case r.code == -1:
			killed++
			// Killed after the rename but before exiting, OUT is the whole
			// output; any other file at OUT would be a partial one.
			if exists(out) {
				if b, err := os.ReadFile(out); err != nil || sha256.Sum256(b) != want {
					t.Errorf("run %d killed after %v left a partial file at %s", i, delay, out)
				}
			}
		default:
			t.Errorf("run %d failed: %v", i, r)
		}
		os.Remove(out)
		for _, tmp := range tempFiles(t, out) {
			os.Remove(tmp)
		}
	}
	t.Logf("%d of %d runs killed before they finished", killed, n)
	if killed == 0 {
		t.Errorf("no run was killed mid-way; the moments are wrong")
	}
}

// reference runs the command to completion and returns its duration and
// the sha256 of its output, which it removes.
func reference(t *testing.T, out string, bin string, args ...string) (time.Duration, [32]byte) {
	t.Helper()
	r := run(t, bin, args...)
	checkSane(t, r)
	if r.code != 0 {
		t.Fatalf("reference run failed: %v", r)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(out)
	return r.took, sha256.Sum256(b)
}

// TestWriterSignals checks the machinery every command shares with the
// ggufwriter stand-in: SIGINT → 130, SIGTERM → 143, a second SIGINT stops at
// once, and SIGKILL never leaves a partial file at the output path.
func TestWriterSignals(t *testing.T) {
	requireBuilt(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	args := []string{out, "40", "15"} // 40 MiB, ~0.3 s
	for _, tc := range []struct {
		name string
		sigs []syscall.Signal
		code int
	}{
		{"SIGINT", []syscall.Signal{syscall.SIGINT}, 130},
		{"SIGTERM", []syscall.Signal{syscall.SIGTERM}, 143},
		{"SIGINT twice", []syscall.Signal{syscall.SIGINT, syscall.SIGINT}, 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, mid := interrupt(t, out, tc.sigs, writerBin, args...)
			checkInterrupted(t, r, mid, tc.code, out)
			if len(tc.sigs) == 1 && !strings.Contains(r.stderr, "interrupted") {
				t.Errorf("no message saying why it stopped: %v", r)
			}
		})
	}
	t.Run("SIGKILL", func(t *testing.T) {
		full, sum := reference(t, out, writerBin, args...)
		killAtRandom(t, 10, full, out, sum, writerBin, args...)
	})
	if names := entries(t, dir); len(names) != 0 {
		t.Errorf("left in the output directory: %v", names)
	}
}

func TestQuantizeSignals(t *testing.T) {
	requireCommand(t, "quantize")
	in := writeSynthLlama(t, t.TempDir())
	snap := snapshot(t, in)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	args := []string{"quantize", in, out, "Q4_K_M"}
	full, sum := reference(t, out, llqtBin, args...)
	t.Logf("a full quantize takes %v", full)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			r, mid := interrupt(t, out, []syscall.Signal{tc.sig}, llqtBin, args...)
			checkInterrupted(t, r, mid, tc.code, out)
		})
	}
	t.Run("SIGKILL", func(t *testing.T) {
		killAtRandom(t, 20, full, out, sum, llqtBin, args...)
	})
	checkUnchanged(t, snap, "quantize")
}

func TestConvertSignals(t *testing.T) {
	requireCommand(t, "convert")
	in := synthHF(t, t.TempDir())
	snap := snapshot(t, in)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	args := []string{"convert", in, out, "--outtype", "f32"}
	full, sum := reference(t, out, llqtBin, args...)
	t.Logf("a full convert takes %v", full)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			r, mid := interrupt(t, out, []syscall.Signal{tc.sig}, llqtBin, args...)
			checkInterrupted(t, r, mid, tc.code, out)
		})
	}
	t.Run("SIGKILL", func(t *testing.T) {
		killAtRandom(t, 6, full, out, sum, llqtBin, args...)
	})
	checkUnchanged(t, snap, "convert")
}

// TestOutputExistsIsRefused: without --force a command never replaces an
// existing file, and the existing file is untouched.
func TestOutputExistsIsRefused(t *testing.T) {
	requireBuilt(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	must(t, os.WriteFile(out, []byte("precious"), 0o644))
	snap := snapshot(t, out)
	r := run(t, writerBin, out, "2", "0")
	checkSane(t, r)
	if r.code == 0 || !strings.Contains(r.stderr, "exists") {
		t.Errorf("overwrote an existing output: %v", r)
	}
	checkUnchanged(t, snap, "ggufwriter")
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("left files: %v", names)
	}
}
