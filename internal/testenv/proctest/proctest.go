// Package proctest runs child processes for tests: each is reaped by a
// goroutine that ends with it, stopped with SIGTERM and then SIGKILL after
// a grace period, and, on Linux, killed by the kernel when the test process
// dies without running its cleanups (a panic, a -timeout, SIGKILL), so a
// killed test run leaves nothing behind. Production code never imports it.
package proctest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a started child process.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been reaped
	err    error         // cmd.Wait's result; valid once exited is closed

	stopOnce sync.Once
	killed   bool // set by stopOnce
}

// Start starts cmd (its output wiring is the caller's) so that it dies
// with the test process, and reaps it in a goroutine.
func Start(cmd *exec.Cmd) (*Process, error) {
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Cmd is the process's command.
func (p *Process) Cmd() *exec.Cmd { return p.cmd }

// Exited is closed once the process has exited and been reaped.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process ended (cmd.Wait's error); call it once Exited is
// closed.
func (p *Process) Err() error { return p.err }

// ExitCode is the process's exit code (-1 when a signal ended it); call it
// once Exited is closed.
func (p *Process) ExitCode() int { return p.cmd.ProcessState.ExitCode() }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process; a process that already exited is not
// an error.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.cmd.Path, err)
	}
	return nil
}

// Stop sends SIGTERM, waits up to grace for the exit, then SIGKILLs and
// waits. It reports whether the process had to be killed. Safe to call
// more than once and after the process exited by itself.
func (p *Process) Stop(grace time.Duration) (killed bool) {
	p.stopOnce.Do(func() {
		if !p.Running() {
			return
		}
		_ = p.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.exited:
			return
		case <-t.C:
		}
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.killed = true
	})
	return p.killed
}

// Kill sends SIGKILL and waits for the exit.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Wait waits up to timeout for the process to exit by itself; it reports
// whether it did.
func (p *Process) Wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}
