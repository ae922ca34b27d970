package devenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ownerFile marks a temporary data directory made by causeway dev; it
// holds the pid of the process that made it.
const ownerFile = "causeway-dev.pid"

// dataDirPattern names temporary data directories under os.TempDir().
const dataDirPattern = "causeway-dev-*"

// makeDataDir creates a temporary data directory under parent and marks it
// with this process's pid, so that a later start can remove it if this
// process is killed before it cleans up.
func makeDataDir(parent string) (string, error) {
	dir, err := os.MkdirTemp(parent, dataDirPattern)
	if err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("create data dir %s: %w", dir, err)
	}
	return dir, nil
}

// removeStaleDataDirs removes the data directories under parent that a
// causeway dev made (they have an owner file) and whose process is gone,
// and returns them. Directories without an owner file are never touched.
func removeStaleDataDirs(parent string) []string {
	matches, _ := filepath.Glob(filepath.Join(parent, dataDirPattern))
	var removed []string
	for _, dir := range matches {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours, or not readable
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if os.RemoveAll(dir) == nil {
			removed = append(removed, dir)
		}
	}
	return removed
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
