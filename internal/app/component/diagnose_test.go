package component

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

const (
	gatewayToken = "gw-token-0123456789abcdef0123456789"
	dnsshimToken = "dns-token-0123456789abcdef012345678"
)

// startCertsServer serves a real Certs.Sign for cluster south on
// 127.0.0.1:0 (join tokens gatewayToken and dnsshimToken) and returns its
// address and the CA directory.
func startCertsServer(t *testing.T) (addr, caDir string) {
	t.Helper()
	auth, err := federator.NewJoinTokenAuthenticator(map[string]string{gatewayToken: "gateway", dnsshimToken: "dnsshim"})
	require.NoError(t, err)
	// Many failures on purpose: a failure limit that does not cut them short.
	return startCertsServerWith(t, federator.CertsServerConfig{Authenticator: auth, Limits: federator.SignLimits{Burst: 1000}})
}

// startCertsServerWith is startCertsServer with cfg's authenticator,
// lifetime and registerer.
func startCertsServerWith(t *testing.T, cfg federator.CertsServerConfig) (addr, caDir string) {
	t.Helper()
	caDir = filepath.Join(t.TempDir(), "ca")
	td := certs.TrustDomainFor("south", DefaultDomain)
	_, err := certs.InitCADir(caDir, td, 24*time.Hour, time.Now(), false)
	require.NoError(t, err)
	cas, err := certs.LoadCASet(caDir)
	require.NoError(t, err)
	cfg.Cluster, cfg.TrustDomain, cfg.CA = "south", td, cas
	srv, err := federator.NewCertsServer(cfg)
	require.NoError(t, err)
	fedID, err := certs.NewID(td, "federator")
	require.NoError(t, err)
	cert, err := certs.NewRotator(t.Context(), certs.RotatorConfig{ID: fedID, Signer: &certs.LocalSigner{CA: cas}})
	require.NoError(t, err)
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(certs.BootstrapServerConfig(certs.TLSOptions{Source: cert, NextProtos: []string{"h2"}}))))
	causewayv1.RegisterCertsServer(gs, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return ln.Addr().String(), caDir
}

// TestClientIdentityClassifiesPermanentErrors: a gateway or DNS shim whose
// token is rejected, bound to another component, missing, or whose caFile
// is another cluster's logs the error at ERROR with a hint naming the fix.
func TestClientIdentityClassifiesPermanentErrors(t *testing.T) {
	addr, caDir := startCertsServer(t)
	dir := t.TempDir()
	otherCA := filepath.Join(dir, "other-ca")
	_, err := certs.InitCADir(otherCA, certs.TrustDomainFor("north", DefaultDomain), time.Hour, time.Now(), false)
	require.NoError(t, err)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	own := filepath.Join(caDir, "bundle.crt")
	for _, tc := range []struct {
		name, component, token, caFile, hint string
	}{
		{"valid token", "gateway", write("gw.token", gatewayToken), own, ""},
		{"wrong token", "gateway", write("bad.token", "not-a-token-0123456789abcdef0123456"), own, "the federator rejected the token in tokenFile"},
		{"token of another component", "gateway", write("dns.token", dnsshimToken), own, "must hold a join token issued for component gateway"},
		{"dnsshim with the gateway's token", "dnsshim", filepath.Join(dir, "gw.token"), own, "must hold a join token issued for component dnsshim"},
		{"tokenFile missing", "dnsshim", filepath.Join(dir, "none.token"), own, "cannot be read"},
		{"caFile of another cluster", "gateway", filepath.Join(dir, "gw.token"), filepath.Join(otherCA, "bundle.crt"), "caFile must be this cluster's bundle.crt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &ClientConfig{Identity: Identity{Cluster: "south", Domain: DefaultDomain}, Federator: addr, Bootstrap: addr,
				CAFile: tc.caFile, TokenFile: tc.token}
			var logs syncBuf
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			ci, err := newClientIdentity(ctx, c, tc.component, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.hint == "" {
				require.NoError(t, err, "log:\n%s", logs.String())
				ci.boot.Close()
				return
			}
			require.Error(t, err)
			out := logs.String()
			// Attempts at about 0, 0.75, 2.2 and 4 s (later on a loaded machine);
			// lines at 0 and 2 s at most, the second one saying how many
			// failures were not logged.
			n := countLines(out, "level=ERROR", tc.hint)
			skipped := regexp.MustCompile(`level=ERROR .*not_logged=[1-9]`).FindAllString(out, -1)
			assert.True(t, n == 1 || n == 2 && len(skipped) == 1,
				"the ERROR with the hint at the first failure, then with back-off; log:\n%s", out)
			assert.Zero(t, countLines(out, "level=WARN"), "a permanent error is not logged as transient")
		})
	}
}
