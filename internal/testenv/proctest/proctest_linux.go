package proctest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the child when the test process
// dies; other attributes the caller set stay.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
