// Package secureetcd starts embedded etcd members with client TLS and auth on,
// the way a federation etcd runs, for tests: a root (clusterset-admin)
// client, and per-cluster users whose role is store.ClusterRolePermissions.
// Production code never imports it.
package secureetcd

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/embedetcd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Secure is a running etcd with TLS and auth on.
type Secure struct {
	Server *embedetcd.Server
	// Admin is a client of the clusterset-admin user (root role).
	Admin *clientv3.Client
	// AdminCreds are the clusterset-admin's credentials as files.
	AdminCreds Creds
	dir        string

	mu        sync.Mutex        // guards passwords
	passwords map[string]string // by cluster
}

// Creds are what a process needs to reach the secure etcd as one user.
type Creds struct {
	Endpoint, CAFile, ServerName, Username, PasswordFile string
}

// Password returns a random password.
func Password(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random password: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Start starts a member on 127.0.0.1 with client TLS, creates root and
// the clusterset-admin user and enables auth. Everything is closed by
// t.Cleanup.
func Start(t testing.TB) *Secure {
	t.Helper()
	dir := t.TempDir()
	files, err := embedetcd.NewTLSFiles(filepath.Join(dir, "tls"), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatalf("etcd TLS: %v", err)
	}
	// bcrypt.MinCost (4), the lowest bcrypt cost: tests create many users, and every client
	// authenticates once; the cost does not change what is checked.
	srv, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: filepath.Join(dir, "data"), TLS: &files, BcryptCost: 4})
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(srv.Close)
	s := &Secure{Server: srv, dir: dir, passwords: map[string]string{}}
	boot, err := srv.Client()
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	adminPW := Password(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = store.SetupAuth(ctx, boot, store.AuthSetup{RootPassword: Password(t), AdminPassword: adminPW})
	_ = boot.Close()
	if err != nil {
		t.Fatalf("set up etcd auth: %v", err)
	}
	s.AdminCreds = s.writeCreds(t, store.ClustersetAdminUser, adminPW)
	s.Admin = s.client(t, store.ClustersetAdminUser, adminPW)
	return s
}

func (s *Secure) client(t testing.TB, user, password string) *clientv3.Client {
	t.Helper()
	cli, err := s.Server.ClientAs(user, password)
	if err != nil {
		t.Fatalf("etcd client as %s: %v", user, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func (s *Secure) writeCreds(t testing.TB, user, password string) Creds {
	t.Helper()
	path := filepath.Join(s.dir, user+".password")
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		t.Fatalf("write password: %v", err)
	}
	return Creds{Endpoint: s.Server.Endpoint(), CAFile: s.Server.TLS().CAFile, ServerName: embedetcd.ServerName,
		Username: user, PasswordFile: path}
}

// ClusterCreds creates (once) cluster's etcd user and role and returns its
// credentials.
func (s *Secure) ClusterCreds(t testing.TB, cluster string) Creds {
	t.Helper()
	s.mu.Lock()
	pw, ok := s.passwords[cluster]
	if !ok {
		pw = Password(t)
		s.passwords[cluster] = pw
	}
	s.mu.Unlock()
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := store.EnsureClusterRole(ctx, s.Admin, cluster, pw); err != nil {
			t.Fatalf("create etcd user of %s: %v", cluster, err)
		}
	}
	return s.writeCreds(t, store.ClusterUser(cluster), pw)
}

// ClusterClient returns a client authenticated as cluster's user.
func (s *Secure) ClusterClient(t testing.TB, cluster string) *clientv3.Client {
	t.Helper()
	c := s.ClusterCreds(t, cluster)
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		t.Fatalf("read password: %v", err)
	}
	return s.client(t, c.Username, string(b[:len(b)-1]))
}
