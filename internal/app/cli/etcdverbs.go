package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/lib/names"
)

// MigrateResult is what `causeway etcd migrate` did.
type MigrateResult struct {
	store.Migrated
}

// WriteTable renders one sentence.
func (m *MigrateResult) WriteTable(w io.Writer) error {
	_, err := fmt.Fprintf(w, "moved %d export records to cluster-first keys, dropped %d already republished, left %d unreadable keys alone\n",
		m.Moved, m.Dropped, m.Skipped)
	return err
}

// Migrate moves export records of the old key layout to the new one.
func (e *EtcdAdmin) Migrate(ctx context.Context) (*MigrateResult, error) {
	m, err := store.MigrateExportKeys(ctx, e.cli)
	if err != nil {
		return nil, e.explain("migrate", err)
	}
	return &MigrateResult{Migrated: m}, nil
}

// ClusterUserResult is what `causeway etcd cluster-user` did.
type ClusterUserResult struct {
	Cluster      string `json:"cluster"`
	User         string `json:"user"`
	PasswordFile string `json:"passwordFile"`
}

// WriteTable renders one sentence.
func (r *ClusterUserResult) WriteTable(w io.Writer) error {
	_, err := fmt.Fprintf(w, "etcd user %s of cluster %s may write only %s's keys; its password is in %s (etcd.username, etcd.passwordFile)\n",
		r.User, r.Cluster, r.Cluster, r.PasswordFile)
	return err
}

// ClusterUser creates (or resets the password of) cluster's own etcd user
// and role, and writes the new password to dir/password (0600, dir 0700).
func (e *EtcdAdmin) ClusterUser(ctx context.Context, cluster, dir string) (*ClusterUserResult, error) {
	if !names.IsDNSLabel(cluster) {
		return nil, fmt.Errorf("cluster name %q is not a DNS label", cluster)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random password: %w", err)
	}
	pw := base64.RawURLEncoding.EncodeToString(b)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	path, err := filepath.Abs(filepath.Join(dir, "password"))
	if err != nil {
		return nil, err
	}
	// Written first (temp + rename): a password etcd has but nobody knows
	// would lock the cluster out.
	tmp, err := os.CreateTemp(dir, ".password-*")
	if err != nil {
		return nil, fmt.Errorf("write password: %w", err)
	}
	_, werr := tmp.WriteString(pw + "\n")
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("write password: %w", werr)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if err := store.EnsureClusterRole(ctx, e.cli, cluster, pw); err != nil {
		os.Remove(tmp.Name())
		return nil, e.explain("create etcd user of "+cluster, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("write password %s: %w", path, err)
	}
	return &ClusterUserResult{Cluster: cluster, User: store.ClusterUser(cluster), PasswordFile: path}, nil
}

// readPasswordFile reads a password file (surrounding spaces trimmed).
func readPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return pw, nil
}

// SetupAuthResult is what `causeway etcd setup-auth` did.
type SetupAuthResult struct {
	Endpoints string `json:"endpoints"`
}

// WriteTable renders one sentence.
func (r *SetupAuthResult) WriteTable(w io.Writer) error {
	_, err := fmt.Fprintf(w, "etcd %s: auth on; users root and %s exist; create each cluster's user with `causeway join` or `causeway etcd cluster-user`\n",
		r.Endpoints, store.ClustersetAdminUser)
	return err
}

// SetupAuth creates root and the clusterset admin (passwords from the
// files) and enables auth; idempotent.
func (e *EtcdAdmin) SetupAuth(ctx context.Context, rootPasswordFile, adminPasswordFile string) (*SetupAuthResult, error) {
	root, err := readPasswordFile(rootPasswordFile)
	if err != nil {
		return nil, err
	}
	admin, err := readPasswordFile(adminPasswordFile)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if err := store.SetupAuth(ctx, e.cli, store.AuthSetup{RootPassword: root, AdminPassword: admin}); err != nil {
		return nil, e.explain("set up auth", err)
	}
	return &SetupAuthResult{Endpoints: e.endpoints}, nil
}
