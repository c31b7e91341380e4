package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Binaries built once by TestMain.
var (
	llqtBin   string // the llqt command
	writerBin string // testdata/ggufwriter: the commands' write path, slowed down
	loaderBin string // testdata/evalload: the engine's model loader
	buildErr  error
)

// maxRSS is the most memory any run may use, hostile input or not.
const maxRSS = 200 << 20

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "llqt-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildErr = build(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(dir string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	llqtBin = filepath.Join(dir, "llqt")
	writerBin = filepath.Join(dir, "ggufwriter")
	loaderBin = filepath.Join(dir, "evalload")
	for pkg, out := range map[string]string{"./cmd/llqt": llqtBin, "./internal/e2e/testdata/ggufwriter": writerBin,
		"./internal/e2e/testdata/evalload": loaderBin} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

func requireBuilt(t *testing.T) {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// requireCommand skips the test when this build of llqt lacks a command
// (they land from different branches).
func requireCommand(t *testing.T, name ...string) {
	t.Helper()
	requireBuilt(t)
	args := append(append([]string(nil), name...), "--help")
	if out, err := exec.Command(llqtBin, args...).CombinedOutput(); err != nil {
		t.Skipf("llqt %s is not registered in this build (%v: %s); skipping", strings.Join(name, " "), err,
			firstLine(string(out)))
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// result is one finished run.
type result struct {
	args           []string
	code           int // -1 when killed by a signal
	stdout, stderr string
	maxRSS         int64 // bytes
	took           time.Duration
}

func (r result) String() string {
	stderr := r.stderr
	if len(stderr) > 2000 {
		stderr = stderr[:2000] + fmt.Sprintf("… (%d bytes)", len(r.stderr))
	}
	return fmt.Sprintf("%s: exit %d after %v, peak RSS %d MiB\nstderr: %q",
		strings.Join(r.args, " "), r.code, r.took.Round(time.Millisecond), r.maxRSS>>20, stderr)
}

// run runs bin with args to completion (60 s at most).
func run(t *testing.T, bin string, args ...string) result {
	t.Helper()
	return runWithin(t, 60*time.Second, bin, args...)
}

// runWithin runs bin with args, failing the test if it takes longer than limit.
func runWithin(t *testing.T, limit time.Duration, bin string, args ...string) result {
	t.Helper()
	p := start(t, bin, args...)
	return p.waitWithin(t, limit)
}

// proc is a started run whose peak memory is being watched.
type proc struct {
	cmd            *exec.Cmd
	args           []string
	stdout, stderr bytes.Buffer
	began          time.Time
	peak           atomic.Int64
	stopWatch      chan struct{}
	watchDone      chan struct{}
}

// start launches bin with args, capturing its output and polling its peak
// resident memory. The rusage of wait4 cannot be used: Linux carries the
// parent's (this test's) high-water mark into a child across exec.
func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), args: args, stopWatch: make(chan struct{}), watchDone: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.began = time.Now()
	go p.watch()
	return p
}

func (p *proc) watch() {
	defer close(p.watchDone)
	status := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(status); err == nil {
			if i := bytes.Index(b, []byte("VmHWM:")); i >= 0 {
				var kb int64
				if _, err := fmt.Sscan(string(b[i+len("VmHWM:"):]), &kb); err == nil && kb<<10 > p.peak.Load() {
					p.peak.Store(kb << 10)
				}
			}
		}
		select {
		case <-p.stopWatch:
			return
		case <-tick.C:
		}
	}
}

// wait waits for the run, killing it after 60 s.
func (p *proc) wait(t *testing.T) result {
	t.Helper()
	return p.waitWithin(t, 60*time.Second)
}

// waitWithin waits for the run, killing it and failing the test after limit.
func (p *proc) waitWithin(t *testing.T, limit time.Duration) result {
	t.Helper()
	timer := time.AfterFunc(limit, func() { _ = p.cmd.Process.Kill() })
	err := p.cmd.Wait()
	timedOut := !timer.Stop()
	close(p.stopWatch)
	<-p.watchDone
	if err != nil && p.cmd.ProcessState == nil {
		t.Fatalf("%s %v: %v", p.cmd.Path, p.args, err)
	}
	r := result{args: p.args, code: p.cmd.ProcessState.ExitCode(), stdout: p.stdout.String(),
		stderr: p.stderr.String(), maxRSS: p.peak.Load(), took: time.Since(p.began)}
	if timedOut {
		t.Fatalf("timed out: %v", r)
	}
	return r
}

// checkSane fails on a panic, a Go runtime crash or too much memory.
func checkSane(t *testing.T, r result) {
	t.Helper()
	if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") ||
		strings.Contains(r.stderr, "fatal error:") {
		t.Errorf("crashed: %v", r)
	}
	if r.code == 2 && strings.Contains(r.stderr, "runtime") {
		t.Errorf("runtime failure: %v", r)
	}
	if r.maxRSS > maxRSS {
		t.Errorf("used %d MiB of memory (limit %d MiB): %v", r.maxRSS>>20, maxRSS>>20, r)
	}
}

// checkFailed expects a clean error: non-zero exit, an "llqt:" message, sane.
func checkFailed(t *testing.T, r result) {
	t.Helper()
	checkSane(t, r)
	if strings.Contains(r.stderr, "unknown flag") || strings.Contains(r.stderr, "unknown command") ||
		strings.Contains(r.stderr, "accepts ") {
		t.Fatalf("the test's command line does not match this build: %v", r)
	}
	if r.code == 0 {
		t.Errorf("succeeded on bad input: %v", r)
	} else if !strings.Contains(r.stderr, "llqt:") {
		t.Errorf("no error message: %v", r)
	}
}

// fileState is what must not change about an input.
type fileState struct {
	sum   [32]byte
	mtime time.Time
	size  int64
}

// snapshot records every regular file under the given paths.
func snapshot(t *testing.T, paths ...string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			st, err := os.Stat(path)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out[path] = fileState{sha256.Sum256(b), st.ModTime(), st.Size()}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkUnchanged fails if any input changed since snap was taken.
func checkUnchanged(t *testing.T, snap map[string]fileState, what string) {
	t.Helper()
	for path, before := range snap {
		after := snapshot(t, path)[path]
		if after != before {
			t.Errorf("%s changed input %s (size %d→%d, mtime %v→%v)", what, path, before.size, after.size,
				before.mtime, after.mtime)
		}
	}
}

// entries lists a directory's names, sorted.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	sort.Strings(names)
	return names
}

// tempFiles lists the atomic writer's leftovers for out.
func tempFiles(t *testing.T, out string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".llqt-tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	return matches
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
