package component

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/testenv/etcdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// syncBuf is a log buffer safe for the handler's and the test's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clusterKeys counts the keys of cluster in etcd under every prefix of
// docs/etcd-schema.md that names it (exports name it last).
func clusterKeys(t *testing.T, cli *clientv3.Client, cluster string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := 0
	for _, p := range []string{"clusters/" + cluster, "gateways/" + cluster + "/", "imports/" + cluster + "/",
		"vips/" + cluster + "/", "drain/" + cluster, "bundles/" + cluster, "leaders/" + cluster + "/"} {
		resp, err := cli.Get(ctx, "/causeway/v1/"+p, clientv3.WithPrefix(), clientv3.WithCountOnly())
		require.NoError(t, err)
		n += int(resp.Count)
	}
	resp, err := cli.Get(ctx, "/causeway/v1/exports/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	require.NoError(t, err)
	for _, kv := range resp.Kvs {
		if strings.HasSuffix(string(kv.Key), "/"+cluster) {
			n++
		}
	}
	return n
}

func TestRunFederatorValidatesBeforeAnyEtcdWrite(t *testing.T) {
	srv, cli := etcdtest.Start(t)
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	_, err := certs.InitCADir(caDir, certs.TrustDomainFor("south", DefaultDomain), 24*time.Hour, time.Now(), false)
	require.NoError(t, err)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	goodExports := write("exports.yaml", "version: 1\nservices: []\n")
	badExports := write("bad-exports.yaml", "version: 1\nservices:\n- name: echo\n  namespace: demo\n  prots: []\n")
	goodTokens := write("tokens.yaml", "gw-token-0123456789abcdef0123456789: gateway\n")
	typoTokens := write("typo-tokens.yaml", "gw-token-0123456789abcdef0123456789: gatewey\n")
	adminTokens := write("admin-tokens.yaml", "gw-token-0123456789abcdef0123456789: gateway\nad-token-0123456789abcdef0123456789: {component: admin, maxUses: 1}\n")
	countedTokens := write("counted-tokens.yaml", "gw-token-0123456789abcdef0123456789: {component: gateway, maxUses: 3}\n")
	badTokens := write("bad-tokens.yaml", "gw-token-0123456789abcdef0123456789: {component: gateway, maxUse: 3}\n")

	for _, tc := range []struct {
		name       string
		exports    string
		tokens     string
		components []string
		wantErr    string // "" = the start succeeds and registers the cluster
	}{
		{"valid config registers the cluster", goodExports, goodTokens, nil, ""},
		{"invalid exports file", badExports, goodTokens, nil, "prots"},
		{"token of an unknown component", goodExports, typoTokens, nil, `unknown component "gatewey"`},
		{"token of a privileged component", goodExports, adminTokens, nil, `a token is bound to component "admin": federator: Certs.Sign never issues`},
		{"token with maxUses", goodExports, countedTokens, nil, ""},
		{"token with an unknown field", goodExports, badTokens, nil, `unknown field "maxUse"`},
		{"unknown signing component", goodExports, goodTokens, []string{"gateway", "bogus"}, `signing.components: unknown component "bogus"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster := "south"
			_, err := cli.Delete(context.Background(), "/causeway/v1/", clientv3.WithPrefix())
			require.NoError(t, err)
			c := &FederatorConfig{Identity: Identity{Cluster: cluster}, Etcd: EtcdConfig{Endpoints: []string{srv.Endpoint()}},
				Listen: FederatorListenConfig{GRPC: "127.0.0.1:0", Bootstrap: "127.0.0.1:0", Admin: "127.0.0.1:0", HTTP: "127.0.0.1:0"},
				CADir:  caDir, VIPRanges: []string{"127.99.0.0/24"}, Exports: ExportsConfig{Static: tc.exports},
				Signing: SigningConfig{JoinTokensFile: tc.tokens, Components: tc.components}}
			c.defaults()
			var logs syncBuf
			log := slog.New(slog.NewTextHandler(&logs, nil))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- RunFederator(ctx, c, log) }()
			if tc.wantErr == "" {
				require.Eventually(t, func() bool { return clusterKeys(t, cli, cluster) > 0 }, 20*time.Second, 50*time.Millisecond,
					"a valid start registers the cluster; log:\n%s", logs.String())
				cancel()
				require.NoError(t, <-done)
				return
			}
			select {
			case err := <-done:
				require.ErrorContains(t, err, tc.wantErr)
			case <-time.After(20 * time.Second):
				t.Fatalf("RunFederator did not refuse the start; log:\n%s", logs.String())
			}
			assert.Zero(t, clusterKeys(t, cli, cluster), "a refused start leaves no key of the cluster in etcd")
		})
	}
}

func TestLoadFederatorConfigChecksComponents(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"unknown signing component", strings.Replace(goodFederator, "signing: {", "signing: {components: [gateway, bogus], ", 1), `signing.components: unknown component "bogus" (known: gateway, dnsshim, federator, admin)`},
		{"tokenReview account of an unknown component", "cluster: east\netcd: {endpoints: [x:1]}\ncaDir: /ca\nexports: {kubernetes: {gatewayService: a/b}}\nsigning: {tokenReview: {accounts: {a/b: gatewey}}}\n", `signing.tokenReview.accounts[a/b]: unknown component "gatewey"`},
		{"tokenReview account of a privileged component", "cluster: east\netcd: {endpoints: [x:1]}\ncaDir: /ca\nexports: {kubernetes: {gatewayService: a/b}}\nsigning: {tokenReview: {accounts: {a/b: federator}}}\n", `signing.tokenReview.accounts[a/b]: component "federator": federator: Certs.Sign never issues federator or admin identities`},
		{"tokenReview account of a component not signed", "cluster: east\netcd: {endpoints: [x:1]}\ncaDir: /ca\nexports: {kubernetes: {gatewayService: a/b}}\nsigning: {components: [gateway], tokenReview: {accounts: {a/b: dnsshim}}}\n", `component "dnsshim" is not in signing.components (gateway)`},
		{"privileged signing component", strings.Replace(goodFederator, "signing: {", "signing: {components: [gateway, dnsshim, admin], ", 1), `signing.components: component "admin": federator: Certs.Sign never issues`},
		{"negative joinTokenMaxUses", strings.Replace(goodFederator, "signing: {", "signing: {joinTokenMaxUses: -1, ", 1), `signing.joinTokenMaxUses: want a positive number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadFederatorConfig(writeConfig(t, tc.body))
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := LoadFederatorConfig(writeConfig(t, strings.Replace(goodFederator, "signing: {", "signing: {components: [dnsshim, gateway], ", 1)))
	require.NoError(t, err, "known components are accepted")
}
