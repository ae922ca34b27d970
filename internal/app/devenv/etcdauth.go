package devenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/lib/embedetcd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdAuthDir is the data dir's directory of etcd credentials (0700; every
// file in it 0600): the etcd CA and server certificate, and one password
// file per etcd user.
const etcdAuthDir = "etcd-auth"

// devBcryptCost is the bcrypt cost of the dev etcd's password hashes:
// bcrypt.MinCost. etcd checks a bcrypt hash at every client login, and at
// etcd's default cost (10) that took 2-3 s per login on a loaded 2-core
// machine, longer than a client's dial timeout: dev did not start. The
// cost only slows guessing of weak passwords from a stolen hash; dev's
// passwords are 192 random bits and its etcd lives for one run, so a low
// cost gives up nothing. Production etcd keeps its own (default) cost.
const devBcryptCost = 4

// devEtcd is the dev clusterset's embedded etcd with TLS and auth on, as a
// federation etcd runs: every cluster's federator has its own user whose
// role writes only the cluster's keys, and the clusterset admin (the CLI
// under causeway dev) does the cross-cluster writes.
type devEtcd struct {
	srv *embedetcd.Server
	dir string // the etcd-auth directory
}

// newEtcdTLS writes the etcd CA and server certificate for ip into the
// data dir's etcd-auth directory.
func newEtcdTLS(dataDir, ip string) (*embedetcd.TLSFiles, error) {
	dir := filepath.Join(dataDir, etcdAuthDir)
	files, err := embedetcd.NewTLSFiles(dir, []string{ip, "127.0.0.1", "localhost"}, 30*24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("etcd TLS: %w", err)
	}
	return &files, nil
}

// passwordFile is where user's password is kept.
func (e *devEtcd) passwordFile(user string) string { return filepath.Join(e.dir, user+".password") }

// password returns user's password, created (and written) the first time:
// a data dir kept across runs (--data-dir) keeps its etcd and so its users.
func (e *devEtcd) password(user string) (string, error) {
	path := e.passwordFile(user)
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read etcd password of %s: %w", user, err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("etcd password of %s: %w", user, err)
	}
	pw := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write etcd password of %s: %w", user, err)
	}
	return pw, nil
}

// setupAuth creates root, the clusterset admin and every cluster's user,
// and enables auth. On a data dir whose etcd already has auth on, it logs
// in as the clusterset admin with the kept password.
func (e *devEtcd) setupAuth(ctx context.Context, clusters []string) error {
	a := store.AuthSetup{Clusters: map[string]string{}}
	var err error
	if a.RootPassword, err = e.password(store.RootUser); err != nil {
		return err
	}
	if a.AdminPassword, err = e.password(store.ClustersetAdminUser); err != nil {
		return err
	}
	for _, c := range clusters {
		if a.Clusters[c], err = e.password(store.ClusterUser(c)); err != nil {
			return err
		}
	}
	cli, err := e.srv.Client()
	if err == nil {
		err = store.SetupAuth(ctx, cli, a)
		_ = cli.Close()
	}
	if err != nil { // auth already on (a kept data dir): as the clusterset admin
		cli, aerr := e.srv.ClientAs(store.ClustersetAdminUser, a.AdminPassword)
		if aerr != nil {
			return fmt.Errorf("set up etcd auth: %w (and as %s: %w)", err, store.ClustersetAdminUser, aerr)
		}
		defer cli.Close()
		if err := store.SetupAuth(ctx, cli, a); err != nil {
			return err
		}
	}
	return nil
}

// clusterClient is a new etcd client of cluster's federator, as its own user.
func (e *devEtcd) clusterClient(cluster string) (*clientv3.Client, error) {
	user := store.ClusterUser(cluster)
	pw, err := e.password(user)
	if err != nil {
		return nil, err
	}
	return e.srv.ClientAs(user, pw)
}

// adminCredentials are the clusterset admin's credentials for the state file.
func (e *devEtcd) adminCredentials() *EtcdCredentials {
	return &EtcdCredentials{
		Endpoints: []string{e.srv.Endpoint()}, CAFile: e.srv.TLS().CAFile, ServerName: embedetcd.ServerName,
		Username: store.ClustersetAdminUser, PasswordFile: e.passwordFile(store.ClustersetAdminUser),
	}
}
