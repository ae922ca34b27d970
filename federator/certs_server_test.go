package federator

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	authv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func mustP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// rawCSR builds a CSR with any key and names, bypassing certs.NewCSR.
func rawCSR(t *testing.T, key crypto.Signer, uris []string, mod func(*x509.CertificateRequest)) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{}
	for _, u := range uris {
		p, err := url.Parse(u)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, p)
	}
	if mod != nil {
		mod(tmpl)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	require.NoError(t, err)
	return der
}

// Over 80 lines: a table of cases, each a few lines.
func TestCertsSign(t *testing.T) {
	env := startCertsEnv(t, certsEnvOptions{})
	rpc := causewayv1.NewCertsClient(env.conn(t, false))
	gw := "spiffe://" + certsEastTD + "/gateway"
	gwCSR, gwKey := csrFor(t, certsEastTD, "gateway")
	dnsCSR, _ := csrFor(t, certsEastTD, "dnsshim")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	badSig := slices.Clone(gwCSR)
	badSig[len(badSig)-1] ^= 0x01
	westCSR, _ := csrFor(t, certsWestTD, "gateway")
	adminCSR, _ := csrFor(t, certsEastTD, "admin")
	deepCSR, _ := csrFor(t, certsEastTD, "ns/demo/sa/web")

	tests := []struct {
		name     string
		auth     string // the authorization metadata value; "" sends none
		csr      []byte
		wantCode codes.Code
		wantMsg  string
		wantID   string
	}{
		{name: "gateway", auth: "Bearer " + gatewayToken, csr: gwCSR, wantCode: codes.OK, wantID: gw},
		{name: "dnsshim", auth: "bearer " + dnsshimToken, csr: dnsCSR, wantCode: codes.OK, wantID: "spiffe://" + certsEastTD + "/dnsshim"},

		{name: "no credential", csr: gwCSR, wantCode: codes.Unauthenticated, wantMsg: "no credential"},
		{name: "unknown token", auth: "Bearer " + gatewayToken + "x", csr: gwCSR, wantCode: codes.Unauthenticated, wantMsg: "join token unknown"},
		{name: "not a bearer token", auth: "Basic " + gatewayToken, csr: gwCSR, wantCode: codes.Unauthenticated, wantMsg: "not \"Bearer <token>\""},
		{name: "empty bearer token", auth: "Bearer ", csr: gwCSR, wantCode: codes.Unauthenticated},

		{name: "component of another caller", auth: "Bearer " + gatewayToken, csr: dnsCSR, wantCode: codes.PermissionDenied,
			wantMsg: "may obtain gateway certificates only"},
		{name: "privileged component", auth: "Bearer " + adminToken, csr: adminCSR, wantCode: codes.PermissionDenied,
			wantMsg: "never issues federator or admin identities"},
		{name: "another cluster's identity", auth: "Bearer " + gatewayToken, csr: westCSR, wantCode: codes.PermissionDenied,
			wantMsg: "identity of another trust domain"},
		{name: "workload path", auth: "Bearer " + gatewayToken, csr: deepCSR, wantCode: codes.PermissionDenied,
			wantMsg: "does not name a component"},

		{name: "oversize", auth: "Bearer " + gatewayToken, csr: make([]byte, certs.MaxCSRSize+1), wantCode: codes.InvalidArgument,
			wantMsg: "exceeds 16384"},
		{name: "oversize before authentication", auth: "Bearer nope", csr: make([]byte, certs.MaxCSRSize+1), wantCode: codes.InvalidArgument},
		{name: "empty", auth: "Bearer " + gatewayToken, wantCode: codes.InvalidArgument, wantMsg: "malformed"},
		{name: "malformed", auth: "Bearer " + gatewayToken, csr: []byte("not a csr"), wantCode: codes.InvalidArgument, wantMsg: "malformed"},
		{name: "bad signature", auth: "Bearer " + gatewayToken, csr: badSig, wantCode: codes.InvalidArgument, wantMsg: "bad signature"},
		{name: "RSA key", auth: "Bearer " + gatewayToken, csr: rawCSR(t, rsaKey, []string{gw}, nil), wantCode: codes.InvalidArgument,
			wantMsg: "not ECDSA P-256"},
		{name: "P-384 key", auth: "Bearer " + gatewayToken, csr: rawCSR(t, p384, []string{gw}, nil), wantCode: codes.InvalidArgument,
			wantMsg: "not ECDSA P-256"},
		{name: "extra DNS name", auth: "Bearer " + gatewayToken, wantCode: codes.InvalidArgument, wantMsg: "exactly one SPIFFE ID",
			csr: rawCSR(t, mustP256(t), []string{gw}, func(r *x509.CertificateRequest) { r.DNSNames = []string{"federator.east"} })},
		{name: "extra IP", auth: "Bearer " + gatewayToken, wantCode: codes.InvalidArgument, wantMsg: "exactly one SPIFFE ID",
			csr: rawCSR(t, mustP256(t), []string{gw}, func(r *x509.CertificateRequest) { r.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} })},
		{name: "extra e-mail", auth: "Bearer " + gatewayToken, wantCode: codes.InvalidArgument, wantMsg: "exactly one SPIFFE ID",
			csr: rawCSR(t, mustP256(t), []string{gw}, func(r *x509.CertificateRequest) { r.EmailAddresses = []string{"a@b.c"} })},
		{name: "extra URI", auth: "Bearer " + gatewayToken, wantCode: codes.InvalidArgument, wantMsg: "exactly one SPIFFE ID",
			csr: rawCSR(t, mustP256(t), []string{gw, "spiffe://" + certsEastTD + "/admin"}, nil)},
		{name: "no SPIFFE ID", auth: "Bearer " + gatewayToken, wantCode: codes.InvalidArgument, wantMsg: "exactly one SPIFFE ID",
			csr: rawCSR(t, mustP256(t), nil, nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			okBefore := testutil.ToFloat64(env.server.signs.WithLabelValues(codes.OK.String()))
			ctx := callCtx(t)
			if tc.auth != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, certs.AuthorizationHeader, tc.auth)
			}
			resp, err := rpc.Sign(ctx, &causewayv1.SignRequest{Csr: tc.csr})
			require.Equal(t, tc.wantCode, status.Code(err), "err: %v", err)
			okAfter := testutil.ToFloat64(env.server.signs.WithLabelValues(codes.OK.String()))
			if tc.wantCode != codes.OK {
				require.Nil(t, resp)
				require.ErrorContains(t, err, tc.wantMsg)
				require.Equal(t, okBefore, okAfter, "nothing signed")
				return
			}
			require.Equal(t, okBefore+1, okAfter)
			require.Len(t, resp.GetCertificateChain(), 1)
			leaf, err := x509.ParseCertificate(resp.GetCertificateChain()[0])
			require.NoError(t, err)
			id, _, err := certs.VerifyChain(resp.GetCertificateChain(), env.bundles, time.Now())
			require.NoError(t, err)
			require.Equal(t, tc.wantID, id.String())
			require.WithinDuration(t, time.Now().Add(time.Hour), leaf.NotAfter, 5*time.Second)
			require.Equal(t, leaf.NotAfter, resp.GetNotAfter().AsTime())
			require.Equal(t, [][]byte{env.ca.Cert.Raw}, resp.GetTrustBundle())
			if tc.name == "gateway" {
				require.True(t, gwKey.PublicKey.Equal(leaf.PublicKey))
			}
		})
	}
}

// TestSignClientRotatorAgainstCertsServer runs a Rotator whose Signer is
// the gRPC client of a real Certs service.
func TestSignClientRotatorAgainstCertsServer(t *testing.T) {
	env := startCertsEnv(t, certsEnvOptions{})
	cc := env.conn(t, false)
	id := certs.ID{TrustDomain: certsEastTD, Path: "/gateway"}
	r, err := certs.NewRotator(callCtx(t), certs.RotatorConfig{ID: id, Logger: quietLog,
		Signer: certs.NewSignClient(cc, certs.StaticToken(gatewayToken))})
	require.NoError(t, err)
	c, err := r.Certificate()
	require.NoError(t, err)
	got, _, err := certs.VerifyChain(c.Certificate, env.bundles, time.Now())
	require.NoError(t, err)
	require.Equal(t, id, got)

	// A wrong token: the gRPC code survives the client's wrapping.
	_, err = certs.NewSignClient(cc, certs.StaticToken("wrong")).Sign(callCtx(t), []byte{1})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

// TestCertsNoPlaintext: a token never travels in the clear, and a Certs
// service mounted without TLS refuses to sign.
func TestCertsNoPlaintext(t *testing.T) {
	csr, _ := csrFor(t, certsEastTD, "gateway")

	// The client refuses to send its token over an insecure connection.
	plain := startCertsEnv(t, certsEnvOptions{plaintext: true})
	_, err := certs.NewSignClient(plain.conn(t, true), certs.StaticToken(gatewayToken)).Sign(callCtx(t), csr)
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	require.ErrorContains(t, err, "cannot send secure credentials on an insecure connection")
	require.Zero(t, testutil.ToFloat64(plain.server.signs.WithLabelValues(codes.OK.String())))

	// A caller that sends it anyway is refused by the server.
	ctx := metadata.AppendToOutgoingContext(callCtx(t), certs.AuthorizationHeader, "Bearer "+gatewayToken)
	_, err = causewayv1.NewCertsClient(plain.conn(t, true)).Sign(ctx, &causewayv1.SignRequest{Csr: csr})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	require.ErrorContains(t, err, "TLS required")

	// A TLS client cannot talk to the plaintext server either.
	_, err = certs.NewSignClient(plain.conn(t, false), certs.StaticToken(gatewayToken)).Sign(callCtx(t), csr)
	require.Equal(t, codes.Unavailable, status.Code(err))

	// Served with the mutual-TLS configuration of the other endpoints, a
	// caller without a certificate is refused in the handshake.
	mtls := startCertsEnv(t, certsEnvOptions{serverTLS: certs.ServerConfig})
	_, err = certs.NewSignClient(mtls.conn(t, false), certs.StaticToken(gatewayToken)).Sign(callCtx(t), csr)
	require.Equal(t, codes.Unavailable, status.Code(err), "err: %v", err)
	require.Zero(t, testutil.ToFloat64(mtls.server.signs.WithLabelValues(codes.OK.String())))
}

func TestNewCertsServerValidates(t *testing.T) {
	ca, err := certs.NewCA(certsEastTD, time.Hour, time.Now())
	require.NoError(t, err)
	auth, err := NewJoinTokenAuthenticator(map[string]string{gatewayToken: "gateway"})
	require.NoError(t, err)
	ok := CertsServerConfig{Cluster: "east", TrustDomain: certsEastTD, CA: ca, Authenticator: auth}
	s, err := NewCertsServer(ok)
	require.NoError(t, err)
	require.Equal(t, DefaultCertComponents, s.cfg.Components)
	require.Equal(t, certs.DefaultLeafLifetime, s.cfg.Lifetime)

	for name, mod := range map[string]func(*CertsServerConfig){
		"bad cluster":         func(c *CertsServerConfig) { c.Cluster = "East_1" },
		"no CA":               func(c *CertsServerConfig) { c.CA = nil },
		"no authenticator":    func(c *CertsServerConfig) { c.Authenticator = nil },
		"CA of another trust": func(c *CertsServerConfig) { c.TrustDomain = certsWestTD },
		"bad component":       func(c *CertsServerConfig) { c.Components = []string{"a/b"} },
		"negative lifetime":   func(c *CertsServerConfig) { c.Lifetime = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			mod(&c)
			_, err := NewCertsServer(c)
			require.Error(t, err)
		})
	}
}

func TestCertsServerFollowsCARotation(t *testing.T) {
	old, err := certs.NewCA(certsEastTD, time.Hour, time.Now())
	require.NoError(t, err)
	next, err := certs.NewCA(certsEastTD, time.Hour, time.Now())
	require.NoError(t, err)
	set, err := certs.NewCASet(old, nil)
	require.NoError(t, err)
	auth, err := NewJoinTokenAuthenticator(map[string]string{gatewayToken: "gateway"})
	require.NoError(t, err)
	s, err := NewCertsServer(CertsServerConfig{Cluster: "east", TrustDomain: certsEastTD, CA: set, Authenticator: auth, Logger: quietLog})
	require.NoError(t, err)
	sign := func() (*x509.Certificate, [][]byte) {
		csr, _ := csrFor(t, certsEastTD, "gateway")
		ctx := metadata.NewIncomingContext(tlsPeerContext(t.Context()), metadata.Pairs(certs.AuthorizationHeader, "Bearer "+gatewayToken))
		resp, err := s.Sign(ctx, &causewayv1.SignRequest{Csr: csr})
		require.NoError(t, err)
		leaf, err := x509.ParseCertificate(resp.GetCertificateChain()[0])
		require.NoError(t, err)
		return leaf, resp.GetTrustBundle()
	}
	leaf, bundle := sign()
	require.NoError(t, leaf.CheckSignatureFrom(old.Cert))
	require.Len(t, bundle, 1)

	require.NoError(t, set.Update(old, []*x509.Certificate{old.Cert, next.Cert}))
	leaf, bundle = sign()
	require.NoError(t, leaf.CheckSignatureFrom(old.Cert))
	require.Len(t, bundle, 2)

	require.NoError(t, set.Update(next, []*x509.Certificate{old.Cert, next.Cert}))
	leaf, _ = sign()
	require.NoError(t, leaf.CheckSignatureFrom(next.Cert))

	require.NoError(t, set.Update(next, nil))
	leaf, bundle = sign()
	require.NoError(t, leaf.CheckSignatureFrom(next.Cert))
	require.Equal(t, [][]byte{next.Cert.Raw}, bundle)
}

func TestJoinTokenAuthenticator(t *testing.T) {
	_, err := NewJoinTokenAuthenticator(nil)
	require.Error(t, err)
	_, err = NewJoinTokenAuthenticator(map[string]string{"short": "gateway"})
	require.ErrorContains(t, err, "shorter than 32")
	_, err = NewJoinTokenAuthenticator(map[string]string{gatewayToken: ""})
	require.Error(t, err)

	a, err := NewJoinTokenAuthenticator(map[string]string{gatewayToken: "gateway", dnsshimToken: "dnsshim"})
	require.NoError(t, err)
	p, err := a.Authenticate(t.Context(), dnsshimToken)
	require.NoError(t, err)
	require.Equal(t, "dnsshim", p.Component)
	require.Regexp(t, `^join-token:[0-9a-f]{8}$`, p.Name)
	require.NotContains(t, p.Name, dnsshimToken[:8])
	for _, bad := range []string{"", gatewayToken[:len(gatewayToken)-1], gatewayToken + " ", "GATEWAY-join-token-0123456789abcdef"} {
		_, err := a.Authenticate(t.Context(), bad)
		require.ErrorIs(t, err, ErrUnauthenticated, "%q", bad)
	}

	tok, err := NewJoinToken()
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(tok), MinJoinTokenLength)
	tok2, err := NewJoinToken()
	require.NoError(t, err)
	require.NotEqual(t, tok, tok2)
}

// TestTokenReviewAuthenticatorStatuses covers the TokenReview answers a
// real apiserver gives rarely or only with extra setup (see
// certs_server_kube_test.go for the real one).
func TestTokenReviewAuthenticatorStatuses(t *testing.T) {
	accounts := map[string]string{"causeway/gateway": "gateway"}
	tests := []struct {
		name    string
		status  authv1.TokenReviewStatus
		apiErr  error
		want    error // nil: accepted
		wantMsg string
	}{
		{name: "allowed", status: authv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"causeway"},
			User: authv1.UserInfo{Username: "system:serviceaccount:causeway:gateway"}}},
		{name: "not authenticated", status: authv1.TokenReviewStatus{Error: "token expired"}, want: ErrUnauthenticated, wantMsg: "token expired"},
		{name: "other audience", status: authv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"vault"},
			User: authv1.UserInfo{Username: "system:serviceaccount:causeway:gateway"}}, want: ErrUnauthenticated},
		{name: "a user", status: authv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"causeway"},
			User: authv1.UserInfo{Username: "alice"}}, want: ErrNotAllowed, wantMsg: "not a ServiceAccount"},
		{name: "other ServiceAccount", status: authv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"causeway"},
			User: authv1.UserInfo{Username: "system:serviceaccount:default:gateway"}}, want: ErrNotAllowed, wantMsg: "default/gateway"},
		{name: "apiserver down", apiErr: errors.New("connection refused"), wantMsg: "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			var seen *authv1.TokenReview
			cs.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
				seen = a.(k8stesting.CreateAction).GetObject().(*authv1.TokenReview)
				if tc.apiErr != nil {
					return true, nil, tc.apiErr
				}
				return true, &authv1.TokenReview{Status: tc.status}, nil
			})
			a, err := NewTokenReviewAuthenticator(TokenReviewConfig{Client: cs, Accounts: accounts})
			require.NoError(t, err)
			p, err := a.Authenticate(t.Context(), "the-token")
			require.Equal(t, "the-token", seen.Spec.Token)
			require.Equal(t, []string{DefaultTokenAudience}, seen.Spec.Audiences)
			if tc.want == nil && tc.apiErr == nil {
				require.NoError(t, err)
				require.Equal(t, Principal{Name: "system:serviceaccount:causeway:gateway", Component: "gateway"}, p)
				return
			}
			require.Error(t, err)
			require.ErrorContains(t, err, tc.wantMsg)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			} else {
				require.False(t, errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrNotAllowed))
			}
		})
	}

	cs := fake.NewClientset()
	for _, bad := range []TokenReviewConfig{{Accounts: accounts}, {Client: cs}, {Client: cs, Accounts: map[string]string{"gateway": "gateway"}},
		{Client: cs, Accounts: map[string]string{"ns/a/b": "gateway"}}, {Client: cs, Accounts: map[string]string{"ns/a": ""}}} {
		_, err := NewTokenReviewAuthenticator(bad)
		require.Error(t, err)
	}
}

// tlsPeerContext returns ctx carrying a TLS peer, as gRPC sets it for a
// call over TLS.
func tlsPeerContext(ctx context.Context) context.Context {
	return peer.NewContext(ctx, &peer.Peer{Addr: &net.TCPAddr{}, AuthInfo: credentials.TLSInfo{}})
}
