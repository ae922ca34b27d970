package devenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRemoveStaleDataDirs: a data dir whose causeway dev is gone (here a
// process that has exited) is removed; a live owner's dir and a directory
// without the marker are left alone.
func TestRemoveStaleDataDirs(t *testing.T) {
	parent := t.TempDir()
	dead := exec.Command("true")
	require.NoError(t, dead.Run()) // waited for: its pid is free now

	stale, err := makeDataDir(parent)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(stale, ownerFile), []byte(strconv.Itoa(dead.Process.Pid)+"\n"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(stale, "etcd", "member"), 0o700))
	live, err := makeDataDir(parent) // this process: alive
	require.NoError(t, err)
	foreign := filepath.Join(parent, "causeway-dev-foreign")
	require.NoError(t, os.Mkdir(foreign, 0o700))

	require.Equal(t, []string{stale}, removeStaleDataDirs(parent))
	require.NoDirExists(t, stale)
	require.DirExists(t, live)
	require.DirExists(t, foreign)
	require.Empty(t, removeStaleDataDirs(parent))
}
