package kubetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// KubeVersion is the Kubernetes release the harness runs. It must match
// KUBE_VERSION in hack/kube-apiserver.sh and the k8s.io/kubernetes version
// in multicluster-tests/kube-apiserver/go.mod.
const KubeVersion = "v1.37.2"

// BinaryEnv names the environment variable that, when set, is the path of
// the kube-apiserver binary to run instead of the cached build.
const BinaryEnv = "CAUSEWAY_KUBE_APISERVER"

// buildScript is the builder's path relative to the repository root.
const buildScript = "hack/kube-apiserver.sh"

var (
	// binaryMu serialises Binary so that concurrent Starts build once per
	// process; the script's flock does the same across processes.
	binaryMu sync.Mutex
	// binaryPath caches Binary's successful result. Guarded by binaryMu.
	binaryPath string
)

// Binary returns the path of the kube-apiserver binary: $CAUSEWAY_KUBE_APISERVER
// if set, else the cached build under
// ${XDG_CACHE_HOME:-$HOME/.cache}/causeway/kube-apiserver/<KubeVersion>/.
// If the cached build is missing, Binary runs hack/kube-apiserver.sh (found
// by walking up from the working directory), which takes 5-12 minutes the
// first time.
func Binary() (string, error) { return binary(nil) }

// binary is Binary; logf, if not nil, is told before a build starts.
func binary(logf func(format string, args ...any)) (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("kube-apiserver from $%s: %w", BinaryEnv, err)
		}
		return p, nil
	}
	binaryMu.Lock()
	defer binaryMu.Unlock()
	if binaryPath != "" {
		return binaryPath, nil
	}
	if p, err := cachedBinary(); err == nil && isExecutable(p) {
		binaryPath = p
		return p, nil
	}
	if logf != nil {
		logf("kubetest: building kube-apiserver %s with %s (5-12 minutes, once per machine)", KubeVersion, buildScript)
	}
	p, err := buildBinary()
	if err != nil {
		return "", err
	}
	binaryPath = p
	return p, nil
}

// cachedBinary is where hack/kube-apiserver.sh puts the binary.
func cachedBinary() (string, error) {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locate cache dir: %w", err)
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "causeway", "kube-apiserver", KubeVersion, "kube-apiserver"), nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// buildBinary runs the build script and returns the path it prints.
func buildBinary() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(root, buildScript))
	cmd.Dir = root
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("run %s: %w\n%s", buildScript, err, tail(stderr.String(), 40))
	}
	p := strings.TrimSpace(stdout.String())
	if !isExecutable(p) {
		return "", fmt.Errorf("run %s: printed %q, which is not an executable", buildScript, p)
	}
	return p, nil
}

// repoRoot walks up from the working directory to the directory holding
// both go.mod and the build script (so nested modules are skipped).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		_, errMod := os.Stat(filepath.Join(dir, "go.mod"))
		_, errScript := os.Stat(filepath.Join(dir, buildScript))
		if errMod == nil && errScript == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod with " + buildScript + " above the working directory; set $" + BinaryEnv)
		}
		dir = parent
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
