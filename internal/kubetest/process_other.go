//go:build !linux

package kubetest

import "os/exec"

// dieWithParent is a no-op off Linux: there is no parent-death signal, so an
// apiserver outlives a test process killed before its cleanups ran.
func dieWithParent(*exec.Cmd) {}
