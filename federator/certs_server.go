package federator

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/names"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Errors of Authenticators, mapped by Certs.Sign to gRPC codes.
var (
	// ErrUnauthenticated: the credential is malformed, expired, revoked
	// or unknown (UNAUTHENTICATED).
	ErrUnauthenticated = errors.New("federator: credential rejected")
	// ErrNotAllowed: the credential is valid but its holder may not obtain
	// certificates (PERMISSION_DENIED).
	ErrNotAllowed = errors.New("federator: caller may not obtain certificates")
)

// Principal is an authenticated caller of Certs.Sign and the one component
// it may obtain certificates for.
type Principal struct {
	// Name identifies the caller in logs, e.g.
	// "system:serviceaccount:causeway:gateway" or "join-token:3f2a9c1b".
	Name string
	// Component is the SPIFFE path component the caller may request.
	Component string
}

// Authenticator checks the bearer credential of a Certs.Sign call.
type Authenticator interface {
	// Authenticate returns the caller the token belongs to. Errors wrap
	// ErrUnauthenticated or ErrNotAllowed; any other error means the token
	// could not be checked (UNAVAILABLE).
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// DefaultCertComponents are the components Certs.Sign issues certificates
// for when CertsServerConfig.Components is empty.
var DefaultCertComponents = []string{"gateway", "dnsshim"}

// CertsServerConfig configures a CertsServer.
type CertsServerConfig struct {
	// Cluster is this cluster's name. Required.
	Cluster string
	// TrustDomain is this cluster's SPIFFE trust domain. Required; the
	// signing CA must be of it.
	TrustDomain string
	// CA signs: a *certs.CA, or a *certs.CASet that follows CA rotations.
	// Required.
	CA certs.CASource
	// Components are the components certificates may be issued for. If
	// empty, DefaultCertComponents. Never include "admin" unless the
	// authenticator's credentials are as trusted as the admin identity.
	Components []string
	// Lifetime of issued leaves. If zero, certs.DefaultLeafLifetime (24h).
	Lifetime time.Duration
	// Authenticator checks callers. Required.
	Authenticator Authenticator
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
	// Registerer for metrics; if nil, metrics are not registered.
	Registerer prometheus.Registerer
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// CertsServer serves the Certs gRPC service: it signs CSRs of this
// cluster's components for authenticated callers.
//
// Rules:
//   - It signs only "spiffe://<TrustDomain>/<component>" where component is
//     allowed by the configuration and is the caller's own.
//   - Nothing is signed when any check fails; every failure has a precise
//     gRPC code (see api/causeway/v1/certs.proto).
//   - The request must arrive over TLS (bearer tokens never travel in the
//     clear); serve it with certs.BootstrapServerConfig or certs.ServerConfig.
type CertsServer struct {
	causewayv1.UnimplementedCertsServer
	cfg       CertsServerConfig
	log       *slog.Logger
	authorize certs.Authorizer
	signs     *prometheus.CounterVec
}

var _ causewayv1.CertsServer = (*CertsServer)(nil)

// NewCertsServer returns a CertsServer for cfg.
func NewCertsServer(cfg CertsServerConfig) (*CertsServer, error) {
	if !names.IsDNSLabel(cfg.Cluster) {
		return nil, fmt.Errorf("certs server config: cluster name %q is not a DNS label", cfg.Cluster)
	}
	if cfg.CA == nil {
		return nil, errors.New("certs server config: no CA")
	}
	if cfg.Authenticator == nil {
		return nil, errors.New("certs server config: no authenticator")
	}
	ca, err := cfg.CA.SigningCA()
	if err != nil {
		return nil, fmt.Errorf("certs server config: %w", err)
	}
	if ca.TrustDomain != cfg.TrustDomain {
		return nil, fmt.Errorf("certs server config: CA is of trust domain %s, not %s", ca.TrustDomain, cfg.TrustDomain)
	}
	if len(cfg.Components) == 0 {
		cfg.Components = DefaultCertComponents
	}
	cfg.Components = slices.Clone(cfg.Components)
	for _, c := range cfg.Components {
		id, err := certs.NewID(cfg.TrustDomain, c)
		if _, ok := id.Component(); err != nil || !ok {
			return nil, fmt.Errorf("certs server config: component %q is not one path segment", c)
		}
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = certs.DefaultLeafLifetime
	}
	if cfg.Lifetime < 0 {
		return nil, fmt.Errorf("certs server config: lifetime %s is negative", cfg.Lifetime)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &CertsServer{
		cfg:       cfg,
		log:       log.With("component", "certs", "cluster", cfg.Cluster),
		authorize: certs.AuthorizeComponents(cfg.Components...),
		signs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "causeway", Subsystem: "federator", Name: "certs_sign_total",
			Help: "Certs.Sign requests by gRPC result code.",
		}, []string{"code"}),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.signs); err != nil {
			return nil, fmt.Errorf("certs server: register metrics: %w", err)
		}
	}
	return s, nil
}

// Sign authenticates the caller, checks the CSR and issues a leaf.
func (s *CertsServer) Sign(ctx context.Context, req *causewayv1.SignRequest) (*causewayv1.SignResponse, error) {
	resp, err := s.sign(ctx, req)
	s.signs.WithLabelValues(status.Code(err).String()).Inc()
	return resp, err
}

func (s *CertsServer) sign(ctx context.Context, req *causewayv1.SignRequest) (*causewayv1.SignResponse, error) {
	if err := requireTLS(ctx); err != nil {
		return nil, err
	}
	token, err := bearerToken(ctx)
	if err != nil {
		return nil, err
	}
	// The size check is cheap and comes before the authenticator, which
	// may call the Kubernetes API.
	if n := len(req.GetCsr()); n > certs.MaxCSRSize {
		return nil, status.Errorf(codes.InvalidArgument, "certs: csr of %d bytes exceeds %d", n, certs.MaxCSRSize)
	}
	who, err := s.cfg.Authenticator.Authenticate(ctx, token)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		s.log.Warn("certificate request with a rejected credential", "err", err)
		return nil, status.Errorf(codes.Unauthenticated, "certs: %v", err)
	case errors.Is(err, ErrNotAllowed):
		s.log.Warn("certificate request by a caller that is not allowed", "err", err)
		return nil, status.Errorf(codes.PermissionDenied, "certs: %v", err)
	case err != nil:
		s.log.Warn("certificate request: credential could not be checked", "err", err)
		return nil, status.Errorf(codes.Unavailable, "certs: check credential: %v", err)
	}
	log := s.log.With("caller", who.Name)
	authorize := func(id certs.ID) error {
		if err := s.authorize(id); err != nil {
			return err
		}
		if c, _ := id.Component(); c != who.Component {
			return fmt.Errorf("%s may obtain %s certificates only, not %s: %w", who.Name, who.Component, id, certs.ErrCSRComponent)
		}
		return nil
	}
	leaf, err := certs.IssueFromCSR(s.cfg.CA, req.GetCsr(), s.cfg.Lifetime, s.cfg.Now(), authorize)
	switch {
	case errors.Is(err, certs.ErrCSRInvalid):
		log.Warn("certificate request refused", "err", err)
		return nil, status.Errorf(codes.InvalidArgument, "certs: %v", err)
	case errors.Is(err, certs.ErrCSRForbidden):
		log.Warn("certificate request refused", "err", err)
		return nil, status.Errorf(codes.PermissionDenied, "certs: %v", err)
	case err != nil:
		log.Error("certificate request failed", "err", err)
		return nil, status.Errorf(codes.Internal, "certs: %v", err)
	}
	id, _ := certs.IDFromCertificate(leaf)
	log.Info("certificate issued", "id", id.String(), "serial", certs.SerialHex(leaf),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	return &causewayv1.SignResponse{
		CertificateChain: [][]byte{leaf.Raw},
		TrustBundle:      s.bundle(),
		NotAfter:         timestamppb.New(leaf.NotAfter),
	}, nil
}

// bundle returns the cluster's CA certificates (DER): the whole set during
// a rotation, else the signing CA.
func (s *CertsServer) bundle() [][]byte {
	if set, ok := s.cfg.CA.(interface{ Authorities() []*x509.Certificate }); ok {
		return certs.AuthoritiesDER(set.Authorities())
	}
	if ca, err := s.cfg.CA.SigningCA(); err == nil {
		return [][]byte{ca.Cert.Raw}
	}
	return nil
}

// requireTLS refuses calls that did not arrive over TLS.
func requireTLS(ctx context.Context) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "certs: no peer")
	}
	if _, ok := p.AuthInfo.(credentials.TLSInfo); !ok {
		return status.Error(codes.Unauthenticated, "certs: TLS required")
	}
	return nil
}

// bearerToken extracts the bearer token from the call's metadata.
func bearerToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(certs.AuthorizationHeader)
	switch len(vals) {
	case 0:
		return "", status.Error(codes.Unauthenticated, "certs: no credential: send \"authorization: Bearer <token>\"")
	case 1:
	default:
		return "", status.Error(codes.Unauthenticated, "certs: more than one authorization header")
	}
	tok, ok := certs.ParseBearer(vals[0])
	if !ok {
		return "", status.Error(codes.Unauthenticated, "certs: authorization is not \"Bearer <token>\"")
	}
	return tok, nil
}
