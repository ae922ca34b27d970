package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// AuthorizationHeader is the gRPC metadata key carrying the caller's
// credential to Certs.Sign, as "Bearer <token>".
const AuthorizationHeader = "authorization"

// maxTokenSize bounds a bearer token (a ServiceAccount JWT is ~1 KiB).
const maxTokenSize = 16 << 10

// TokenFunc returns the bearer token to present. It is called for every
// request, so a token file rotated by the kubelet is picked up.
type TokenFunc func(ctx context.Context) (string, error)

// StaticToken returns a TokenFunc always presenting token (a join token).
func StaticToken(token string) TokenFunc {
	return func(context.Context) (string, error) { return token, nil }
}

// TokenFile returns a TokenFunc reading the token from path on every call,
// such as a projected ServiceAccount token
// (/var/run/secrets/tokens/causeway).
func TokenFile(path string) TokenFunc {
	return func(context.Context) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		if len(b) > maxTokenSize {
			return "", fmt.Errorf("read token %s: larger than %d bytes", path, maxTokenSize)
		}
		return strings.TrimSpace(string(b)), nil
	}
}

// SignClient is a Signer calling a federator's Certs.Sign API.
type SignClient struct {
	rpc     causewayv1.CertsClient
	token   TokenFunc
	current func() *tls.Certificate
}

var _ Signer = (*SignClient)(nil)

// NewSignClient returns a Signer calling Certs.Sign on cc with the bearer
// token from token. cc must use TLS transport credentials: the token is
// refused on an insecure connection (see BootstrapServerConfig and
// ClientConfig for the TLS side).
func NewSignClient(cc grpc.ClientConnInterface, token TokenFunc) *SignClient {
	return &SignClient{rpc: causewayv1.NewCertsClient(cc), token: token}
}

// WithRenewalProof makes c prove the certificate current returns (the one
// being renewed; nil or expired: none) with each request, so a renewal
// does not count as a use of a join token (see RenewalProof). It returns c.
func (c *SignClient) WithRenewalProof(current func() *tls.Certificate) *SignClient {
	c.current = current
	return c
}

// Sign sends csr to Certs.Sign and returns the issued chain. gRPC errors
// are returned wrapped, so status.Code still reports their code.
func (c *SignClient) Sign(ctx context.Context, csr []byte) ([][]byte, error) {
	if c.token == nil {
		return nil, errors.New("sign: no token")
	}
	tok, err := c.token(ctx)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if c.current != nil {
		if leaf, proof, ok := RenewalProof(c.current(), csr, time.Now()); ok {
			ctx = metadata.AppendToOutgoingContext(ctx, RenewLeafHeader, string(leaf), RenewProofHeader, string(proof))
		}
	}
	resp, err := c.rpc.Sign(ctx, &causewayv1.SignRequest{Csr: csr}, grpc.PerRPCCredentials(bearer(tok)))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return resp.GetCertificateChain(), nil
}

// bearer is a per-RPC credential sending "authorization: Bearer <token>"
// over TLS only.
type bearer string

var _ credentials.PerRPCCredentials = bearer("")

func (b bearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	// Defense in depth: gRPC already refuses RequireTransportSecurity
	// credentials on insecure transports.
	if ri, ok := credentials.RequestInfoFromContext(ctx); ok {
		if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
			return nil, fmt.Errorf("send token: %w", err)
		}
	}
	return map[string]string{AuthorizationHeader: "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// ParseBearer extracts the token of an "authorization" metadata value
// "Bearer <token>" (scheme case-insensitive). ok is false for anything
// else, including an empty or oversize token.
func ParseBearer(v string) (token string, ok bool) {
	scheme, tok, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || len(tok) > maxTokenSize {
		return "", false
	}
	return tok, true
}
