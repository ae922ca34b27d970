package federator

import (
	"context"
	"os"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCertsSignWithServiceAccountTokens runs Certs.Sign with the
// TokenReview authenticator against a real kube-apiserver: tokens come from
// the TokenRequest API, exactly as a projected volume would hold them.
// Over 80 lines: a table of cases, each a few lines.
func TestCertsSignWithServiceAccountTokens(t *testing.T) {
	kc := kubetest.Start(t, kubetest.Options{Name: "certs-east", SkipMCSCRDs: true})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	kube := kc.Kube

	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "causeway"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	for _, sa := range []string{"gateway", "dnsshim", "intruder", "doomed"} {
		_, err := kube.CoreV1().ServiceAccounts("causeway").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	token := func(sa string, audiences ...string) string {
		t.Helper()
		tr, err := kube.CoreV1().ServiceAccounts("causeway").CreateToken(ctx, sa, &authv1.TokenRequest{
			Spec: authv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: new(int64(600))},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		require.NotEmpty(t, tr.Status.Token)
		return tr.Status.Token
	}
	gatewayTok := token("gateway", DefaultTokenAudience)
	dnsshimTok := token("dnsshim", DefaultTokenAudience)
	intruderTok := token("intruder", DefaultTokenAudience)
	apiserverAudienceTok := token("gateway") // the apiserver's default audience
	doomedTok := token("doomed", DefaultTokenAudience)
	require.NoError(t, kube.CoreV1().ServiceAccounts("causeway").Delete(ctx, "doomed", metav1.DeleteOptions{}))

	auth, err := NewTokenReviewAuthenticator(TokenReviewConfig{Client: kube, Accounts: map[string]string{
		"causeway/gateway": "gateway", "causeway/dnsshim": "dnsshim", "causeway/doomed": "gateway",
	}})
	require.NoError(t, err)
	env := startCertsEnv(t, certsEnvOptions{auth: auth})
	rpc := causewayv1.NewCertsClient(env.conn(t, false))
	gwCSR, _ := csrFor(t, certsEastTD, "gateway")
	dnsCSR, _ := csrFor(t, certsEastTD, "dnsshim")
	westCSR, _ := csrFor(t, certsWestTD, "gateway")

	tests := []struct {
		name     string
		token    string
		csr      []byte
		wantCode codes.Code
		wantMsg  string
	}{
		{"gateway ServiceAccount", gatewayTok, gwCSR, codes.OK, ""},
		{"dnsshim ServiceAccount", dnsshimTok, dnsCSR, codes.OK, ""},
		{"gateway asks for dnsshim", gatewayTok, dnsCSR, codes.PermissionDenied, "may obtain gateway certificates only"},
		{"gateway asks for west's identity", gatewayTok, westCSR, codes.PermissionDenied, "another trust domain"},
		{"ServiceAccount not allowed", intruderTok, gwCSR, codes.PermissionDenied, "causeway/intruder is not allowed"},
		{"token for the apiserver's audience", apiserverAudienceTok, gwCSR, codes.Unauthenticated, "credential rejected"},
		{"token of a deleted ServiceAccount", doomedTok, gwCSR, codes.Unauthenticated, "credential rejected"},
		{"not a token", "garbage", gwCSR, codes.Unauthenticated, "credential rejected"},
		// The apiserver's static admin token is not issued for the causeway
		// audience (a user that is not a ServiceAccount is refused with
		// PERMISSION_DENIED even then: see TestTokenReviewAuthenticatorStatuses).
		{"cluster admin's token", kc.Token, gwCSR, codes.Unauthenticated, "credential rejected"},
		{"bad CSR with a good token", gatewayTok, []byte("junk"), codes.InvalidArgument, "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cctx := metadata.AppendToOutgoingContext(callCtx(t), certs.AuthorizationHeader, "Bearer "+tc.token)
			resp, err := rpc.Sign(cctx, &causewayv1.SignRequest{Csr: tc.csr})
			require.Equal(t, tc.wantCode, status.Code(err), "err: %v", err)
			if tc.wantCode != codes.OK {
				require.ErrorContains(t, err, tc.wantMsg)
				require.Nil(t, resp)
				return
			}
			_, _, err = certs.VerifyChain(resp.GetCertificateChain(), env.bundles, time.Now())
			require.NoError(t, err)
		})
	}

	// A Rotator reading a token file, as a pod with a projected token does.
	tokenFile := t.TempDir() + "/token"
	require.NoError(t, os.WriteFile(tokenFile, []byte(gatewayTok+"\n"), 0o600))
	id := certs.ID{TrustDomain: certsEastTD, Path: "/gateway"}
	r, err := certs.NewRotator(callCtx(t), certs.RotatorConfig{ID: id, Logger: quietLog,
		Signer: certs.NewSignClient(env.conn(t, false), certs.TokenFile(tokenFile))})
	require.NoError(t, err)
	c, err := r.Certificate()
	require.NoError(t, err)
	got, _, err := certs.VerifyChain(c.Certificate, env.bundles, time.Now())
	require.NoError(t, err)
	require.Equal(t, id, got)

	// With the apiserver gone the credential cannot be checked: UNAVAILABLE,
	// so callers retry, rather than a verdict on the token.
	require.NoError(t, kc.Stop())
	cctx := metadata.AppendToOutgoingContext(callCtx(t), certs.AuthorizationHeader, "Bearer "+gatewayTok)
	_, err = rpc.Sign(cctx, &causewayv1.SignRequest{Csr: gwCSR})
	require.Equal(t, codes.Unavailable, status.Code(err), "err: %v", err)
}
