package multicluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/internal/app/devenv"
	"github.com/causeway-mesh/causeway/internal/testenv/proctest"
)

var (
	buildOnce sync.Once
	binPath   string
	builtDir  string // the directory causewayBinary created, if any
	buildErr  error
)

// devStopTimeout bounds a graceful stop of `causeway dev` at the end of a test.
const devStopTimeout = 20 * time.Second

// TestMain removes the binary causewayBinary built once the tests are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// causewayBinary builds cmd/causeway once per test run.
func causewayBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if bin := os.Getenv(binaryEnv); bin != "" { // a netns child: the parent built it
			binPath = bin
			return
		}
		dir, err := os.MkdirTemp("", "causeway-e2e-bin-*")
		if err != nil {
			buildErr = err
			return
		}
		builtDir = dir
		binPath = filepath.Join(dir, "causeway")
		cmd := exec.Command("go", "build", "-race", "-o", binPath, "./cmd/causeway")
		cmd.Dir = repoRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build causeway: %v", buildErr)
	}
	return binPath
}

// repoRoot is the module root (this file's parent directory).
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Dir(filepath.Dir(file))
}

// syncBuffer is a goroutine-safe bytes.Buffer for process output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// devProcess is a running `causeway dev`.
// devProcess is a running `causeway dev`.
type devProcess struct {
	*proctest.Process
	stdout *syncBuffer
	stderr *syncBuffer
}

func startDev(t *testing.T, args ...string) *devProcess {
	t.Helper()
	return startDevEnv(t, nil, args...)
}

// startDevEnv is startDev with extra environment variables ("K=V").
func startDevEnv(t *testing.T, env []string, args ...string) *devProcess {
	t.Helper()
	cmd := exec.Command(causewayBinary(t), append([]string{"dev"}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	p := &devProcess{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	var err error
	if p.Process, err = proctest.Start(cmd); err != nil {
		t.Fatalf("start causeway dev: %v", err)
	}
	t.Cleanup(func() {
		// Stop it as a user would, so that it removes its temporary data
		// directory; SIGKILL only if it does not exit in time.
		if p.Stop(devStopTimeout) {
			t.Errorf("causeway dev still running %s after SIGTERM; killed", devStopTimeout)
		}
		if t.Failed() {
			t.Logf("causeway dev stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	})
	return p
}

// waitState waits for the state file, failing if the process exits first.
func (p *devProcess) waitState(t *testing.T, path string, timeout time.Duration) *devenv.State {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			var st devenv.State
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatalf("state file %s is not valid JSON: %v\n%s", path, err, b)
			}
			return &st
		}
		select {
		case <-p.Exited():
			t.Fatalf("causeway dev exited before writing the state file: %v\nstderr:\n%s", p.Err(), p.stderr)
		case <-deadline:
			t.Fatalf("no state file after %s", timeout)
		case <-tick.C:
		}
	}
}

// stop sends sig and waits for exit within timeout; it returns the exit code.
func (p *devProcess) stop(t *testing.T, sig syscall.Signal, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.Signal(sig); err != nil {
		t.Fatalf("signal causeway dev: %v", err)
	}
	if !p.Wait(timeout) {
		t.Fatalf("causeway dev still running %s after %v", timeout, sig)
	}
	return p.ExitCode(), time.Since(start)
}

// waitExit waits for the process to exit by itself.
func (p *devProcess) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	if !p.Wait(timeout) {
		t.Fatalf("causeway dev did not exit within %s", timeout)
	}
	return p.ExitCode()
}

// requireFree asserts that nothing listens on a TCP address any more.
func requireFree(t *testing.T, network, addr string) {
	t.Helper()
	switch network {
	case "tcp":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s still taken after shutdown: %v", addr, err)
			return
		}
		ln.Close()
	case "udp":
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Errorf("udp %s still taken after shutdown: %v", addr, err)
			return
		}
		pc.Close()
	}
}
