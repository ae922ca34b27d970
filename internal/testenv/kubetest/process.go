package kubetest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/internal/testenv/proctest"
)

// process is a running kube-apiserver whose output goes to a log file.
type process struct {
	*proctest.Process
	logPath string
}

// startProcess starts bin with args, appending its stdout and stderr to
// logPath; it dies with the test process (proctest).
func startProcess(bin string, args []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open apiserver log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	p, err := proctest.Start(cmd)
	// The child holds its own descriptor of the log from here on.
	logFile.Close()
	if err != nil {
		return nil, err
	}
	return &process{Process: p, logPath: logPath}, nil
}

// stop sends SIGTERM, waits up to timeout for the process to exit, then
// SIGKILLs it. Safe to call more than once and after the process has
// exited by itself. It returns an error only if the process had to be
// killed.
func (p *process) stop(timeout time.Duration) error {
	if p.Stop(timeout) {
		return fmt.Errorf("stop kube-apiserver: still running %s after SIGTERM, killed", timeout)
	}
	return nil
}

// exitedErr describes how the process ended; call it once it exited.
func (p *process) exitedErr() error {
	if err := p.Err(); err != nil {
		return fmt.Errorf("kube-apiserver exited: %w", err)
	}
	return errors.New("kube-apiserver exited with status 0")
}

// fileTail returns the last n lines of the file at path.
func fileTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", path, err)
	}
	defer f.Close()
	// The tail of a large log is in its last 64 KiB.
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		_, _ = f.Seek(fi.Size()-window, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", path, err)
	}
	return tail(string(b), n)
}

// addrInUse reports whether the process died because its port was taken
// between freePort releasing it and the apiserver binding it.
func (p *process) addrInUse() bool {
	return strings.Contains(fileTail(p.logPath, 50), "address already in use")
}
