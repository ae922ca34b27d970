package federator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// fileUses counts join token uses in a JSON file, so counts survive a
// restart and federator replicas sharing the file (one host) share them.
// Each use locks path+".lock" (flock), reads the file, and replaces it
// (temporary file and rename) before unlocking.
type fileUses struct {
	path string
	mu   sync.Mutex // serializes this process's uses (flock is per open file)
}

// usesFile is the file's content.
type usesFile struct {
	Version int `json:"version"`
	// Uses maps the hex SHA-256 digest of a token to how many certificates
	// it obtained.
	Uses map[string]int `json:"uses"`
}

func (f *fileUses) use(digest string, maxUses int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lock, err := os.OpenFile(f.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("count join token use: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("count join token use: lock %s: %w", lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	st, err := readUses(f.path)
	if err != nil {
		return 0, err
	}
	n := st.Uses[digest]
	if n >= maxUses {
		return n, nil
	}
	st.Uses[digest] = n + 1
	if err := writeUses(f.path, st); err != nil {
		return 0, err
	}
	return n, nil
}

// checkUsesFile reads path (absent is fine) and checks that its directory
// is writable, so a bad joinTokenUsesFile fails the start rather than the
// first Certs.Sign.
func checkUsesFile(path string) error {
	if _, err := readUses(path); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".check-*")
	if err != nil {
		return fmt.Errorf("join token uses file %s: directory not writable: %w", path, err)
	}
	name := tmp.Name()
	tmp.Close()
	return os.Remove(name)
}

func readUses(path string) (*usesFile, error) {
	st := &usesFile{Version: 1, Uses: map[string]int{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read join token uses: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("join token uses file %s: %w", path, err)
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("join token uses file %s: version %d, want 1", path, st.Version)
	}
	if st.Uses == nil {
		st.Uses = map[string]int{}
	}
	return st, nil
}

func writeUses(path string, st *usesFile) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode join token uses: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write join token uses: %w", err)
	}
	name := tmp.Name()
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("write join token uses %s: %w", path, err)
	}
	return nil
}
