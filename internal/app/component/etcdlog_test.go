package component

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/lib/embedetcd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countLines counts the log lines containing all of subs.
func countLines(log string, subs ...string) int {
	n := 0
	for _, ln := range strings.Split(log, "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(ln, s)
		}
		if ok {
			n++
		}
	}
	return n
}

// TestRunFederatorLogsUnreachableEtcd: with its etcd refusing connections
// the federator logs a WARN naming the endpoints within a few seconds, and
// not at every retry; when an etcd appears on that address it logs the
// connection at INFO.
func TestRunFederatorLogsUnreachableEtcd(t *testing.T) {
	// A free port, closed again: connections to it are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	endpoint := ln.Addr().String()
	require.NoError(t, ln.Close())

	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	_, err = certs.InitCADir(caDir, certs.TrustDomainFor("south", DefaultDomain), 24*time.Hour, time.Now(), false)
	require.NoError(t, err)
	exports := filepath.Join(dir, "exports.yaml")
	tokens := filepath.Join(dir, "tokens.yaml")
	writeFile(t, exports, "version: 1\nservices: []\n")
	writeFile(t, tokens, "gw-token-0123456789abcdef0123456789: gateway\n")
	c := &FederatorConfig{Identity: Identity{Cluster: "south"}, Etcd: EtcdConfig{Endpoints: []string{endpoint}},
		Listen: FederatorListenConfig{GRPC: "127.0.0.1:0", Bootstrap: "127.0.0.1:0", Admin: "127.0.0.1:0", HTTP: "127.0.0.1:0"},
		CADir:  caDir, VIPRanges: []string{"127.99.0.0/24"}, Exports: ExportsConfig{Static: exports},
		Signing: SigningConfig{JoinTokensFile: tokens}}
	c.defaults()
	var logs syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunFederator(ctx, c, slog.New(slog.NewTextHandler(&logs, nil))) }()
	t.Cleanup(func() { cancel(); <-done })

	warn := []string{"level=WARN", "cannot reach the federation etcd", endpoint}
	start := time.Now()
	require.Eventually(t, func() bool { return countLines(logs.String(), warn...) >= 1 }, 10*time.Second, 20*time.Millisecond,
		"WARN naming the endpoint; log:\n%s", logs.String())
	t.Logf("first WARN after %s", time.Since(start).Round(time.Millisecond))
	// Over the next ~15 s the federator retries ~5 times (3 s attempts), with
	// the WARN at most at 2 s, 6 s and 14 s after the first.
	deadline := time.Now().Add(15 * time.Second)
	require.Eventually(t, func() bool { return time.Now().After(deadline) }, 20*time.Second, 100*time.Millisecond)
	n := countLines(logs.String(), warn...)
	t.Logf("%d WARN lines in %s", n, time.Since(start).Round(time.Millisecond))
	assert.GreaterOrEqual(t, n, 2, "logged again with back-off")
	assert.LessOrEqual(t, n, 4, "not at every retry")

	// An etcd appears on that address: the connection is logged at INFO.
	srv, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: t.TempDir(), ClientAddr: endpoint})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	require.Eventually(t, func() bool {
		return countLines(logs.String(), "level=INFO", "federation etcd reachable; cluster registered", endpoint) == 1
	}, 20*time.Second, 50*time.Millisecond, "INFO on connection; log:\n%s", logs.String())
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
}
