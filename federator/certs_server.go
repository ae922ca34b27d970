package federator

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	"github.com/causeway-mesh/causeway/internal/lib/ratelimit"
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
	// Consume, if set, records one use of the credential when a
	// certificate is issued without a renewal proof, and returns an error
	// (wrapping ErrTokenUsedUp) when it has none left. Nil: unlimited
	// (ServiceAccount tokens, which the apiserver expires and binds to a
	// pod).
	Consume func() error
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

// PrivilegedComponents are never issued by Certs.Sign, whatever the
// configuration says: gateways and DNS shims trust "federator" for their
// catalog and certificates, and the Admin API trusts "admin". They are
// issued only from the CA directory itself (the federator's own leaf,
// `causeway certs admin`).
var PrivilegedComponents = []string{"federator", AdminComponent}

// ErrPrivilegedComponent: a configuration or a request names a component
// in PrivilegedComponents.
var ErrPrivilegedComponent = errors.New("federator: Certs.Sign never issues federator or admin identities")

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
	// empty, DefaultCertComponents. PrivilegedComponents are refused.
	Components []string
	// Limits bound failed attempts per source address.
	Limits SignLimits
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
	failures  *ratelimit.Table[netip.Addr] // failed attempts per source
	signs     *prometheus.CounterVec
	issued    *prometheus.CounterVec
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
		if slices.Contains(PrivilegedComponents, c) {
			return nil, fmt.Errorf("certs server config: component %q: %w", c, ErrPrivilegedComponent)
		}
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
	failures, err := cfg.Limits.table(cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("certs server config: %w", err)
	}
	s := &CertsServer{
		cfg:       cfg,
		log:       log.With("component", "certs"),
		authorize: certs.AuthorizeComponents(cfg.Components...),
		failures:  failures,
		signs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "causeway", Subsystem: "federator", Name: "certs_sign_total",
			Help: "Certs.Sign requests by gRPC result code (RESOURCE_EXHAUSTED: refused by the failure limit of its source).",
		}, []string{"code"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "causeway", Subsystem: "federator", Name: "certs_issued_total",
			Help: "Certificates issued by Certs.Sign, by kind: first (used the credential) or renewal (proved a valid leaf).",
		}, []string{"kind"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.signs, s.issued} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("certs server: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Sign authenticates the caller, checks the CSR and issues a leaf. A
// source address with too many recent failures is refused before any
// check (RESOURCE_EXHAUSTED, with a RetryInfo detail).
func (s *CertsServer) Sign(ctx context.Context, req *causewayv1.SignRequest) (*causewayv1.SignResponse, error) {
	src, hasSrc := sourceAddr(ctx)
	if hasSrc {
		if wait, ok := s.failures.Check(src); !ok {
			err := exhausted(wait)
			s.signs.WithLabelValues(status.Code(err).String()).Inc()
			return nil, err
		}
	}
	resp, err := s.sign(ctx, req)
	code := status.Code(err)
	s.signs.WithLabelValues(code.String()).Inc()
	if hasSrc && countsAsFailure(code) {
		s.failures.Take(src)
	}
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
	who, err := s.authenticate(ctx, token)
	if err != nil {
		return nil, err
	}
	log := s.log.With("caller", who.Name)
	renewing, renewal := s.renewal(ctx, req.GetCsr(), log)
	var consumeErr error
	authorize := func(id certs.ID) error {
		if err := s.authorizeFor(id, who, renewing, renewal); err != nil {
			return err
		}
		if !renewal && who.Consume != nil {
			// Last: a use is spent only on a request that is signed.
			if consumeErr = who.Consume(); consumeErr != nil {
				return consumeErr
			}
		}
		return nil
	}
	leaf, err := certs.IssueFromCSR(s.cfg.CA, req.GetCsr(), s.cfg.Lifetime, s.cfg.Now(), authorize)
	switch {
	case consumeErr != nil && errors.Is(err, ErrTokenUsedUp):
		log.Warn("certificate request with a used-up join token", "err", err)
		return nil, status.Errorf(codes.Unauthenticated, "certs: %v", consumeErr)
	case consumeErr != nil:
		log.Error("certificate request: count the credential's use", "err", err)
		return nil, status.Errorf(codes.Unavailable, "certs: count the credential's use: %v", consumeErr)
	case errors.Is(err, certs.ErrCSRInvalid):
		log.Warn("certificate request refused", "err", err)
		return nil, status.Errorf(codes.InvalidArgument, "certs: %v", err)
	case errors.Is(err, certs.ErrCSRForbidden), errors.Is(err, ErrPrivilegedComponent):
		log.Warn("certificate request refused", "err", err)
		return nil, status.Errorf(codes.PermissionDenied, "certs: %v", err)
	case err != nil:
		log.Error("certificate request failed", "err", err)
		return nil, status.Errorf(codes.Internal, "certs: %v", err)
	}
	kind := "first"
	if renewal {
		kind = "renewal"
	}
	s.issued.WithLabelValues(kind).Inc()
	id, _ := certs.IDFromCertificate(leaf)
	log.Info("certificate issued", "id", id.String(), "serial", certs.SerialHex(leaf), "kind", kind,
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	return &causewayv1.SignResponse{
		CertificateChain: [][]byte{leaf.Raw},
		TrustBundle:      s.bundle(),
		NotAfter:         timestamppb.New(leaf.NotAfter),
	}, nil
}

// authenticate checks the bearer token, mapping the authenticator's
// errors to gRPC codes.
func (s *CertsServer) authenticate(ctx context.Context, token string) (Principal, error) {
	who, err := s.cfg.Authenticator.Authenticate(ctx, token)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		s.log.Warn("certificate request with a rejected credential", "err", err)
		return Principal{}, status.Errorf(codes.Unauthenticated, "certs: %v", err)
	case errors.Is(err, ErrNotAllowed):
		s.log.Warn("certificate request by a caller that is not allowed", "err", err)
		return Principal{}, status.Errorf(codes.PermissionDenied, "certs: %v", err)
	case err != nil:
		s.log.Warn("certificate request: credential could not be checked", "err", err)
		return Principal{}, status.Errorf(codes.Unavailable, "certs: check credential: %v", err)
	}
	return who, nil
}

// authorizeFor decides whether who may obtain id: an allowed component,
// never a privileged one (whatever the configuration or the
// authenticator says), the caller's own, and for a renewal the renewed
// leaf's identity.
func (s *CertsServer) authorizeFor(id certs.ID, who Principal, renewing certs.ID, renewal bool) error {
	c, _ := id.Component()
	if slices.Contains(PrivilegedComponents, c) || slices.Contains(PrivilegedComponents, who.Component) {
		return fmt.Errorf("%s asked for %s: %w", who.Name, id, ErrPrivilegedComponent)
	}
	if err := s.authorize(id); err != nil {
		return err
	}
	if c != who.Component {
		return fmt.Errorf("%s may obtain %s certificates only, not %s: %w", who.Name, who.Component, id, certs.ErrCSRComponent)
	}
	if renewal && renewing != id {
		return fmt.Errorf("%s renews %s but asks for %s: %w", who.Name, renewing, id, certs.ErrCSRComponent)
	}
	return nil
}

// renewal checks the request's renewal proof (certs.RenewalProof): the ID
// of the leaf it renews and true when there is a valid one. An invalid
// proof is logged and the request is treated as a first issuance.
func (s *CertsServer) renewal(ctx context.Context, csr []byte, log *slog.Logger) (certs.ID, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	leaf, proof := md.Get(certs.RenewLeafHeader), md.Get(certs.RenewProofHeader)
	if len(leaf) == 0 && len(proof) == 0 {
		return certs.ID{}, false
	}
	if len(leaf) != 1 || len(proof) != 1 {
		log.Warn("certificate request with a malformed renewal proof: treated as a first issuance")
		return certs.ID{}, false
	}
	bundle := certs.NewBundleSet()
	bundle.Set(s.cfg.TrustDomain, s.authorities())
	id, err := certs.VerifyRenewalProof([]byte(leaf[0]), []byte(proof[0]), csr, bundle, s.cfg.Now())
	if err != nil {
		log.Warn("certificate request with a renewal proof that does not verify: treated as a first issuance", "err", err)
		return certs.ID{}, false
	}
	return id, true
}

// bundle returns the cluster's CA certificates (DER): the whole set during
// a rotation, else the signing CA.
func (s *CertsServer) bundle() [][]byte {
	return certs.AuthoritiesDER(s.authorities())
}

// authorities are the cluster's CA certificates, from the CA directory
// (never from etcd): the whole set during a rotation, else the signing CA.
func (s *CertsServer) authorities() []*x509.Certificate {
	if set, ok := s.cfg.CA.(interface{ Authorities() []*x509.Certificate }); ok {
		return set.Authorities()
	}
	if ca, err := s.cfg.CA.SigningCA(); err == nil {
		return []*x509.Certificate{ca.Cert}
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
