package proctest

import (
	"bufio"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStopEscalatesToKill(t *testing.T) {
	// A shell that ignores SIGTERM needs SIGKILL.
	cmd := exec.Command("sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p, err := Start(cmd)
	require.NoError(t, err)
	line, err := bufio.NewReader(out).ReadString('\n') // the trap is set
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
	require.True(t, p.Running())
	require.True(t, p.Stop(200*time.Millisecond), "killed after the grace period")
	require.False(t, p.Running())
	require.True(t, p.Stop(time.Hour), "a second Stop returns at once with the same answer")
}

func TestStopGraceful(t *testing.T) {
	p, err := Start(exec.Command("sleep", "30"))
	require.NoError(t, err)
	require.False(t, p.Stop(10*time.Second), "sleep ends on SIGTERM")
	require.Equal(t, -1, p.ExitCode())
}

func TestWaitAndExitCode(t *testing.T) {
	p, err := Start(exec.Command("sh", "-c", "exit 3"))
	require.NoError(t, err)
	require.True(t, p.Wait(10*time.Second))
	require.Equal(t, 3, p.ExitCode())
	require.Error(t, p.Err())
}
