package federator

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// signOnce sends one CSR for component with token over cc, proving
// current when it is not nil; it returns the issued pair (key and leaf).
func signOnce(t *testing.T, cc grpc.ClientConnInterface, token, component string, current *tls.Certificate) (*tls.Certificate, error) {
	t.Helper()
	csr, key := csrFor(t, certsEastTD, component)
	c := certs.NewSignClient(cc, certs.StaticToken(token))
	if current != nil {
		c = c.WithRenewalProof(func() *tls.Certificate { return current })
	}
	chain, err := c.Sign(callCtx(t), csr)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(chain[0])
	require.NoError(t, err)
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// TestSecurityF9_SignRateLimitedAndTokensBounded replays F9 against a real
// Certs service over TLS. Before: 8 failed attempts in a row took 6–24 ms
// each with no slowdown, and one token signed 4 certificates in a row
// (unlimited). Now:
//   - after its burst of failures (10), a source is refused with
//     RESOURCE_EXHAUSTED and a RetryInfo before any check, even with a
//     valid token, while another source is served;
//   - a join token obtains maxUses certificates, counted in a file, so a
//     restarted federator does not give them back;
//   - a renewal that proves the still-valid leaf uses nothing, and a proof
//     of another identity's leaf does not count as a renewal.
//
// Over 80 lines: one scenario whose steps share the servers it starts.
func TestSecurityF9_SignRateLimitedAndTokensBounded(t *testing.T) {
	t.Run("failures are rate-limited per source", func(t *testing.T) {
		env := startCertsEnv(t, certsEnvOptions{limits: SignLimits{MaxSources: 64}}) // default burst 10, 1 per 6s
		attacker := env.connFrom(t, "127.0.0.1")
		const burst = 10
		for i := range burst {
			_, err := signOnce(t, attacker, "guess-"+gatewayToken[6:]+string(rune('a'+i)), "gateway", nil)
			require.Equal(t, codes.Unauthenticated, status.Code(err), "attempt %d: %v", i, err)
		}
		_, err := signOnce(t, attacker, "guess-one-more-"+gatewayToken, "gateway", nil)
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		require.ErrorContains(t, err, "retry in")
		var retry *errdetails.RetryInfo
		for _, d := range status.Convert(err).Details() {
			if r, ok := d.(*errdetails.RetryInfo); ok {
				retry = r
			}
		}
		require.NotNil(t, retry, "RESOURCE_EXHAUSTED carries a RetryInfo")
		require.Positive(t, retry.GetRetryDelay().AsDuration())
		// The limit is checked before the credential: even the valid token
		// is refused from this source until it has waited.
		_, err = signOnce(t, attacker, gatewayToken, "gateway", nil)
		require.Equal(t, codes.ResourceExhausted, status.Code(err))
		// Another source is not affected.
		_, err = signOnce(t, env.connFrom(t, "127.0.0.2"), gatewayToken, "gateway", nil)
		require.NoError(t, err)
		require.Equal(t, 2.0, testutil.ToFloat64(env.server.signs.WithLabelValues(codes.ResourceExhausted.String())))
	})

	t.Run("join tokens have a bounded use count that survives a restart", func(t *testing.T) {
		ca, err := certs.NewCA(certsEastTD, 24*time.Hour, time.Now())
		require.NoError(t, err)
		usesFile := filepath.Join(t.TempDir(), "join-tokens.yaml.uses")
		start := func() *certsEnv {
			auth, err := NewJoinTokenAuthenticatorFromConfig(JoinTokenConfig{UsesFile: usesFile, Tokens: map[string]JoinToken{
				gatewayToken: {Component: "gateway", MaxUses: 2}, dnsshimToken: {Component: "dnsshim"}}})
			require.NoError(t, err)
			return startCertsEnv(t, certsEnvOptions{ca: ca, auth: auth})
		}
		env := start()
		cc := env.conn(t, false)
		first, err := signOnce(t, cc, gatewayToken, "gateway", nil)
		require.NoError(t, err)
		_, err = signOnce(t, cc, gatewayToken, "gateway", nil)
		require.NoError(t, err)
		_, err = signOnce(t, cc, gatewayToken, "gateway", nil)
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		require.ErrorContains(t, err, "has obtained its 2 certificates (maxUses)")

		// A renewal proving the still-valid leaf uses nothing, again and
		// again, and chains: the renewed leaf proves the next renewal.
		cur := first
		for range 3 {
			cur, err = signOnce(t, cc, gatewayToken, "gateway", cur)
			require.NoError(t, err)
		}
		require.Equal(t, 3.0, testutil.ToFloat64(env.server.issued.WithLabelValues("renewal")))
		require.Equal(t, 2.0, testutil.ToFloat64(env.server.issued.WithLabelValues("first")))

		// A proof of another identity's leaf renews no gateway.
		dns, err := signOnce(t, cc, dnsshimToken, "dnsshim", nil)
		require.NoError(t, err)
		_, err = signOnce(t, cc, gatewayToken, "gateway", dns)
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		require.ErrorContains(t, err, "renews spiffe://"+certsEastTD+"/dnsshim but asks for")
		// Nor is a leaf of another CA (a forged leaf of the same ID).
		other, err := certs.NewCA(certsEastTD, time.Hour, time.Now())
		require.NoError(t, err)
		forged, err := other.NewLeafKeyPair("gateway", time.Hour, time.Now())
		require.NoError(t, err)
		_, err = signOnce(t, cc, gatewayToken, "gateway", forged)
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)

		// A restarted federator (new server, same uses file) keeps the count.
		env2 := start()
		_, err = signOnce(t, env2.conn(t, false), gatewayToken, "gateway", nil)
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		require.ErrorContains(t, err, "maxUses")
		_, err = signOnce(t, env2.conn(t, false), gatewayToken, "gateway", cur)
		require.NoError(t, err, "renewal still works after the restart")
	})
}

// TestSecurityF9_RefusesPrivilegedComponents: Certs.Sign never issues
// federator or admin identities. The configuration is refused (the
// server's components, a join token bound to one) and, should an
// authenticator still bind a credential to one, the request is refused at
// sign time. Before, signing.components accepted both and only a Go
// comment warned.
func TestSecurityF9_RefusesPrivilegedComponents(t *testing.T) {
	ca, err := certs.NewCA(certsEastTD, time.Hour, time.Now())
	require.NoError(t, err)
	tokens, err := NewJoinTokenAuthenticator(map[string]string{gatewayToken: "gateway"})
	require.NoError(t, err)
	for _, c := range PrivilegedComponents {
		_, err := NewCertsServer(CertsServerConfig{Cluster: "east", TrustDomain: certsEastTD, CA: ca,
			Components: []string{"gateway", c}, Authenticator: tokens})
		require.ErrorIs(t, err, ErrPrivilegedComponent, c)
		_, err = NewJoinTokenAuthenticator(map[string]string{gatewayToken: c})
		require.ErrorIs(t, err, ErrPrivilegedComponent, c)
	}

	// An authenticator binding tokens to the privileged components (a
	// custom or misconfigured one): refused at sign time.
	const fedToken = "federator-token-0123456789abcdefghij"
	auth := overrideAuth{Authenticator: overrideAuth{Authenticator: tokens, token: adminToken,
		p: Principal{Name: "admin-token", Component: "admin"}}, token: fedToken, p: Principal{Name: "fed-token", Component: "federator"}}
	env := startCertsEnv(t, certsEnvOptions{ca: ca, auth: auth})
	for _, tc := range []struct{ token, component string }{
		{fedToken, "federator"}, {adminToken, "admin"},
		{gatewayToken, "federator"}, {gatewayToken, "admin"},
	} {
		csr, _ := csrFor(t, certsEastTD, tc.component)
		c := certs.NewSignClient(env.conn(t, false), certs.StaticToken(tc.token))
		_, err := c.Sign(callCtx(t), csr)
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%s with %s: %v", tc.component, tc.token[:8], err)
	}
	require.Zero(t, testutil.ToFloat64(env.server.signs.WithLabelValues(codes.OK.String())))
}
