// Package cli holds what every llqt command shares: signal handling that
// cancels work and removes partial outputs, a progress bar that appears only
// on a terminal, and tables rendered with tablewriter.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/olekukonko/tablewriter"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/llqt/llqt/internal/atomicfile"
)

// ExitError carries a process exit code, e.g. 130 after SIGINT.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// SignalContext returns a context cancelled by SIGINT or SIGTERM. After the
// work returns, Interrupted tells which signal (if any) stopped it.
func SignalContext(parent context.Context) (context.Context, func() os.Signal) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var got os.Signal
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			got = s
			cancel()
			// A second signal means "stop now": clean up and go.
			select {
			case <-ch:
				atomicfile.AbortAll()
				os.Exit(exitCode(got))
			case <-done:
			}
		case <-done:
		}
	}()
	return ctx, func() os.Signal {
		signal.Stop(ch)
		close(done)
		cancel()
		return got
	}
}

func exitCode(s os.Signal) int {
	if s == syscall.SIGTERM {
		return 143
	}
	return 130
}

// Interrupted converts a run's error into an ExitError when a signal stopped it.
func Interrupted(err error, sig os.Signal) error {
	if sig == nil {
		return err
	}
	atomicfile.AbortAll()
	return &ExitError{Code: exitCode(sig), Err: fmt.Errorf("interrupted by %v; no output was written", sig)}
}

// RunCancellable runs work with a context that SIGINT and SIGTERM cancel,
// and turns the error of a run a signal stopped into Interrupted's
// ExitError: the signal handling every long-running command shares.
func RunCancellable(parent context.Context, work func(ctx context.Context) error) error {
	ctx, stop := SignalContext(parent)
	err := work(ctx)
	return Interrupted(err, stop())
}

// IsTerminal reports whether w is an interactive terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Progress is a byte-count progress bar shown only on a terminal.
type Progress struct{ bar *progressbar.ProgressBar }

// NewProgress makes a progress bar for total bytes on w (usually stderr);
// it draws nothing unless w is a terminal.
func NewProgress(w io.Writer, total int64, desc string) *Progress {
	return newProgress(w, total, desc,
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100_000_000))
}

// NewCountProgress is like NewProgress for a count of items (chunks, runs).
func NewCountProgress(w io.Writer, total int64, desc string) *Progress {
	return newProgress(w, total, desc, progressbar.OptionShowCount())
}

// newProgress makes a bar with the look every llqt bar shares (described,
// predicted time, 30 wide, cleared at the end) plus the unit options.
func newProgress(w io.Writer, total int64, desc string, unit ...progressbar.Option) *Progress {
	if !IsTerminal(w) {
		return &Progress{}
	}
	opts := append([]progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
	}, unit...)
	return &Progress{bar: progressbar.NewOptions64(total, opts...)}
}

// Set moves the bar to done.
func (p *Progress) Set(done int64) {
	if p.bar != nil {
		_ = p.bar.Set64(done)
	}
}

// Finish clears the bar.
func (p *Progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// Table renders rows under header with tablewriter.
func Table(w io.Writer, header []string, rows [][]string) error {
	t := tablewriter.NewTable(w)
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return err
	}
	return t.Render()
}

// JSON writes v as indented JSON.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Code extracts the process exit code for err.
func Code(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}
