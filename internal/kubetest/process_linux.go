package kubetest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the apiserver if the test process
// dies without running its cleanups (a panic, a -timeout, SIGKILL).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
