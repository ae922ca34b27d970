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
	"github.com/causeway-mesh/causeway/internal/lib/embedetcd"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Secure is a running etcd with TLS and auth on.
type Secure struct {
	Server *embedetcd.Server
	// Admin is a client of the clusterset-admin user (root role).
	Admin *clientv3.Client
	// AdminCreds are the clusterset-admin's credentials as files.
	AdminCreds Creds
	users      *users
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
	s := &Secure{Server: srv}
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
	s.Admin = s.client(t, store.ClustersetAdminUser, adminPW)
	s.users = &users{dir: dir, admin: s.Admin, endpoint: srv.Endpoint(), tls: srv.TLS(), passwords: map[string]string{}}
	s.AdminCreds = s.users.write(t, store.ClustersetAdminUser, adminPW)
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

// ClusterCreds creates (once) cluster's etcd user and role and returns its
// credentials.
func (s *Secure) ClusterCreds(t testing.TB, cluster string) Creds {
	t.Helper()
	return s.users.cluster(t, cluster)
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

// Cluster is a multi-member etcdtest.Cluster with TLS and auth on: its
// Client is the clusterset admin's.
type Cluster struct {
	*etcdtest.Cluster
	// AdminCreds are the clusterset-admin's credentials as files; its
	// endpoint is the first member's (Endpoints has them all).
	AdminCreds Creds
	users      *users
}

// users creates cluster users and writes credentials files.
type users struct {
	dir      string
	admin    *clientv3.Client
	endpoint string
	tls      *embedetcd.TLSFiles

	mu        sync.Mutex        // guards passwords
	passwords map[string]string // by cluster
}

// StartClusterOn starts an n-member cluster whose client endpoints are on
// clientHost (see etcdtest.StartClusterOn), serving TLS only, with root
// and the clusterset-admin user created and auth enabled. Everything is
// closed by t.Cleanup.
func StartClusterOn(t testing.TB, n int, clientHost string) *Cluster {
	t.Helper()
	dir := t.TempDir()
	files, err := embedetcd.NewTLSFiles(filepath.Join(dir, "tls"), []string{"127.0.0.1", clientHost}, time.Hour)
	if err != nil {
		t.Fatalf("etcd TLS: %v", err)
	}
	c := etcdtest.StartClusterWith(t, n, clientHost, etcdtest.ClusterOptions{TLS: &files, BcryptCost: 4})
	adminPW := Password(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.SetupAuth(ctx, c.Client(), store.AuthSetup{RootPassword: Password(t), AdminPassword: adminPW}); err != nil {
		t.Fatalf("set up etcd auth: %v", err)
	}
	c.UseCredentials(store.ClustersetAdminUser, adminPW)
	u := &users{dir: dir, admin: c.Client(), endpoint: c.Endpoint(0), tls: &files, passwords: map[string]string{}}
	return &Cluster{Cluster: c, AdminCreds: u.write(t, store.ClustersetAdminUser, adminPW), users: u}
}

// ClusterCreds creates (once) cluster's etcd user and role and returns its
// credentials.
func (c *Cluster) ClusterCreds(t testing.TB, cluster string) Creds {
	t.Helper()
	return c.users.cluster(t, cluster)
}

func (u *users) write(t testing.TB, user, password string) Creds {
	t.Helper()
	path := filepath.Join(u.dir, user+".password")
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		t.Fatalf("write password: %v", err)
	}
	return Creds{Endpoint: u.endpoint, CAFile: u.tls.CAFile, ServerName: embedetcd.ServerName, Username: user, PasswordFile: path}
}

func (u *users) cluster(t testing.TB, cluster string) Creds {
	t.Helper()
	u.mu.Lock()
	pw, ok := u.passwords[cluster]
	if !ok {
		pw = Password(t)
		u.passwords[cluster] = pw
	}
	u.mu.Unlock()
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := store.EnsureClusterRole(ctx, u.admin, cluster, pw); err != nil {
			t.Fatalf("create etcd user of %s: %v", cluster, err)
		}
	}
	return u.write(t, store.ClusterUser(cluster), pw)
}
