package kubetest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a running kube-apiserver whose output goes to a log file.
type process struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // the process's exit status; valid once exited is closed

	stopOnce sync.Once
	stopErr  error // set by stopOnce
}

// startProcess starts bin with args, appending its stdout and stderr to
// logPath, and reaps it in a goroutine that ends when the process does.
func startProcess(bin string, args []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open apiserver log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM, waits up to timeout for the process to exit, then
// SIGKILLs it and waits for it. Safe to call more than once and after the
// process has exited by itself. It returns an error only if the process had
// to be killed.
func (p *process) stop(timeout time.Duration) error {
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = fmt.Errorf("stop kube-apiserver: %w", err)
		}
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-p.exited:
			return
		case <-timer.C:
		}
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.stopErr = fmt.Errorf("stop kube-apiserver: still running %s after SIGTERM, killed", timeout)
	})
	return p.stopErr
}

// exitedErr describes how the process ended; call it once exited is closed.
func (p *process) exitedErr() error {
	if p.waitErr != nil {
		return fmt.Errorf("kube-apiserver exited: %w", p.waitErr)
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
