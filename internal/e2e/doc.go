// Package e2e holds end-to-end tests: they build the llqt binary once and run
// it as a user would, on hostile files, under SIGINT, SIGTERM and SIGKILL and
// on a full disk, checking that a run never panics, never exceeds 200 MB of
// memory, never changes its input and never leaves a partial file at its
// output path.
//
// Tests of a command that this build does not register yet skip with a
// message. testdata/ggufwriter is a small program that writes a GGUF file
// through the same path the commands use (cli.SignalContext, gguf.WriteFile,
// cli.Interrupted), so the signal and atomic-output behaviour is tested even
// before those commands exist.
package e2e
