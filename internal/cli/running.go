package cli

import (
	"bytes"
	"io"
)

// RunningOutput is where a long command prints its running output (a line
// per chunk or task) while a progress bar draws on standard error. When
// both streams are one terminal, the bar and the lines would overwrite each
// other, so the lines are held back until Release, after the bar is done.
type RunningOutput struct {
	stdout io.Writer
	held   bytes.Buffer
	w      io.Writer
}

// NewRunningOutput makes the running output for a command writing to
// stdout, with its progress bar on stderr; quiet (as with --json) means
// there is no running output.
func NewRunningOutput(stdout, stderr io.Writer, quiet bool) *RunningOutput {
	r := &RunningOutput{stdout: stdout}
	switch {
	case quiet:
	case IsTerminal(stderr) && IsTerminal(stdout):
		r.w = &r.held
	default:
		r.w = stdout
	}
	return r
}

// Writer is where the running output goes now: standard output, the held
// buffer, or nil when there is none.
func (r *RunningOutput) Writer() io.Writer { return r.w }

// Release writes what was held back to standard output; call it once the
// progress bar is finished, on failure too.
func (r *RunningOutput) Release() {
	_, _ = r.stdout.Write(r.held.Bytes())
	r.held.Reset()
}
