package multicluster

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/causeway-mesh/causeway/internal/app/devenv"
	"github.com/causeway-mesh/causeway/internal/lib/embedetcd"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// requireAnnouncedByGateway asserts that each dev cluster's gateway record
// in etcd is held by the gateway's own Catalog.AnnounceGateway call: it
// carries the SHA-256 of the key of the leaf the gateway serves QUIC with,
// as a deployed gateway's record does (not a key the federator made up).
// It returns the gateways' leaves by cluster.
func requireAnnouncedByGateway(t *testing.T, st *devenv.State) map[string]*x509.Certificate {
	t.Helper()
	a := st.ClustersetAdmin
	require.NotNil(t, a, "the state file names the clusterset admin")
	pw, err := os.ReadFile(a.PasswordFile)
	require.NoError(t, err)
	tc, err := embedetcd.ClientTLS(a.CAFile)
	require.NoError(t, err)
	tc.ServerName = a.ServerName
	cli, err := clientv3.New(clientv3.Config{Endpoints: a.Endpoints, TLS: tc, Username: a.Username,
		Password: strings.TrimSpace(string(pw)), DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer cli.Close()
	leaves := map[string]*x509.Certificate{}
	for _, c := range st.Clusters {
		leaves[c.Name] = gatewayLeaf(t, c.Gateway)
		want := sha256.Sum256(leaves[c.Name].RawSubjectPublicKeyInfo)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.Get(ctx, store.GatewayKey(c.Name, "gw-0"))
		cancel()
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1, "%s's gateway record", c.Name)
		e, err := store.DecodeEntry(string(resp.Kvs[0].Key), resp.Kvs[0].Value)
		require.NoError(t, err)
		require.Equal(t, want[:], e.GetGateway().GetAnnouncerKeySha256(),
			"%s's gateway record is bound to the key its gateway serves with", c.Name)
		require.NotZero(t, resp.Kvs[0].Lease, "%s's gateway record lives on a lease", c.Name)
	}
	return leaves
}

// gatewayLeaf completes a QUIC handshake with a gateway far enough to see
// its leaf certificate (the gateway then refuses the client, which shows
// none).
func gatewayLeaf(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	var (
		mu   sync.Mutex
		leaf *x509.Certificate
	)
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{tunnel.ALPN},
		InsecureSkipVerify: true, //nolint:gosec // only reads the peer's certificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			c, err := x509.ParseCertificate(raw[0])
			mu.Lock()
			leaf = c
			mu.Unlock()
			return err
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := quic.DialAddr(ctx, addr, cfg, &quic.Config{HandshakeIdleTimeout: 5 * time.Second}); err == nil {
		_ = conn.CloseWithError(0, "")
	}
	mu.Lock()
	defer mu.Unlock()
	require.NotNil(t, leaf, "gateway %s showed no certificate", addr)
	return leaf
}
