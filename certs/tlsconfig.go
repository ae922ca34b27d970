package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Source supplies this process's own certificate. It is consulted on every
// handshake, so a rotating implementation takes effect for new connections.
type Source interface {
	// Certificate returns the certificate (with private key) to present.
	Certificate() (*tls.Certificate, error)
}

// StaticSource is a Source holding one certificate that can be swapped with
// Set; it is safe for concurrent use.
type StaticSource struct {
	mu   sync.RWMutex
	cert *tls.Certificate
}

var _ Source = (*StaticSource)(nil)

// NewStaticSource returns a StaticSource serving c.
func NewStaticSource(c *tls.Certificate) *StaticSource {
	return &StaticSource{cert: c}
}

// Set replaces the certificate served to new handshakes.
func (s *StaticSource) Set(c *tls.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cert = c
}

// Certificate returns the current certificate, or an error if none is set.
func (s *StaticSource) Certificate() (*tls.Certificate, error) {
	if s == nil {
		return nil, errors.New("get certificate: nil source")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cert == nil {
		return nil, errors.New("get certificate: no certificate set")
	}
	return s.cert, nil
}

// TLSOptions configures ServerConfig and ClientConfig.
type TLSOptions struct {
	// Source supplies the local certificate for every handshake.
	Source Source
	// Bundles supplies the trust bundle of each accepted trust domain.
	Bundles BundleSource
	// Authorize decides which verified peer IDs are allowed; nil allows any
	// peer from a trust domain with a bundle.
	Authorize Authorizer
	// NextProtos is the ALPN protocol list. When non-empty, the peer must
	// negotiate one of these protocols or the handshake fails.
	NextProtos []string
	// Now returns the time at which certificates are checked; nil means
	// time.Now.
	Now func() time.Time
}

// ServerConfig returns a TLS 1.3-only server configuration that presents the
// certificate from o.Source and requires a client certificate, verified with
// VerifyChain against o.Bundles (requiring client-authentication usage) and
// then checked with o.Authorize. When o.NextProtos is non-empty the client
// must negotiate one of them: a non-overlapping ALPN offer is refused by the
// TLS stack and a missing one by VerifyConnection. Session tickets are
// disabled so every connection is fully verified.
func ServerConfig(o TLSOptions) *tls.Config {
	v := newPeerVerifier(o, x509.ExtKeyUsageClientAuth)
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return localCertificate(o.Source)
		},
		ClientAuth:             tls.RequireAnyClientCert,
		NextProtos:             slices.Clone(o.NextProtos),
		SessionTicketsDisabled: true,
		VerifyPeerCertificate:  v.verifyPeerCertificate,
		VerifyConnection:       v.verifyConnection,
	}
}

// BootstrapServerConfig returns a TLS 1.3-only server configuration that
// presents the certificate from o.Source but does not ask for a client
// certificate. It exists for one endpoint only, the federator's Certs.Sign,
// whose callers have no certificate yet and authenticate with a bearer
// token instead; every other endpoint uses ServerConfig. The connection is
// still encrypted and the server authenticated (there is no plaintext
// fallback), and o.NextProtos is enforced as in ServerConfig. o.Bundles and
// o.Authorize are not used.
func BootstrapServerConfig(o TLSOptions) *tls.Config {
	v := newPeerVerifier(o, x509.ExtKeyUsageClientAuth)
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return localCertificate(o.Source)
		},
		ClientAuth:             tls.NoClientCert,
		NextProtos:             slices.Clone(o.NextProtos),
		SessionTicketsDisabled: true,
		VerifyConnection:       v.verifyALPN,
	}
}

// ClientConfig returns a TLS 1.3-only client configuration that presents the
// certificate from o.Source (o.Source may be nil only for a client of a
// BootstrapServerConfig server, which asks for no certificate). Go's hostname-based verification is replaced
// (InsecureSkipVerify) by SPIFFE verification in VerifyPeerCertificate:
// VerifyChain against o.Bundles (requiring server-authentication usage) and
// then o.Authorize, so the server is always verified. When o.NextProtos is
// non-empty the server must negotiate one of them.
func ClientConfig(o TLSOptions) *tls.Config {
	v := newPeerVerifier(o, x509.ExtKeyUsageServerAuth)
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return localCertificate(o.Source)
		},
		// Hostname verification is replaced by SPIFFE ID verification below;
		// VerifyPeerCertificate always runs on full handshakes and
		// VerifyConnection re-verifies resumed ones.
		InsecureSkipVerify:    true, //nolint:gosec // verified in VerifyPeerCertificate
		NextProtos:            slices.Clone(o.NextProtos),
		VerifyPeerCertificate: v.verifyPeerCertificate,
		VerifyConnection:      v.verifyConnection,
	}
}

// peerVerifier holds what both TLS configurations need to verify a peer.
type peerVerifier struct {
	bundles    BundleSource
	authorize  Authorizer
	nextProtos []string
	now        func() time.Time
	usage      x509.ExtKeyUsage
}

func newPeerVerifier(o TLSOptions, usage x509.ExtKeyUsage) *peerVerifier {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &peerVerifier{
		bundles:    o.Bundles,
		authorize:  o.Authorize,
		nextProtos: slices.Clone(o.NextProtos),
		now:        now,
		usage:      usage,
	}
}

// verifyPeerCertificate is the tls.Config.VerifyPeerCertificate callback.
func (v *peerVerifier) verifyPeerCertificate(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	return v.verify(rawCerts)
}

// verify runs VerifyChain and then the Authorizer.
func (v *peerVerifier) verify(rawCerts [][]byte) error {
	id, _, err := verifyChain(rawCerts, v.bundles, v.now(), v.usage)
	if err != nil {
		return err
	}
	if v.authorize != nil {
		if err := v.authorize(id); err != nil {
			return fmt.Errorf("authorize peer %s: %w", id, err)
		}
	}
	return nil
}

// verifyConnection is the tls.Config.VerifyConnection callback. It enforces
// the ALPN requirement and re-verifies the peer on resumed sessions, where
// VerifyPeerCertificate is not called.
func (v *peerVerifier) verifyConnection(cs tls.ConnectionState) error {
	if err := v.verifyALPN(cs); err != nil {
		return err
	}
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("verify connection: %w", ErrNoPeerCertificate)
	}
	if cs.DidResume {
		raw := make([][]byte, 0, len(cs.PeerCertificates))
		for _, c := range cs.PeerCertificates {
			raw = append(raw, c.Raw)
		}
		if err := v.verify(raw); err != nil {
			return fmt.Errorf("verify resumed connection: %w", err)
		}
	}
	return nil
}

// verifyALPN enforces TLS 1.3 and, when protocols are configured, that one
// of them was negotiated.
func (v *peerVerifier) verifyALPN(cs tls.ConnectionState) error {
	if len(v.nextProtos) > 0 && !slices.Contains(v.nextProtos, cs.NegotiatedProtocol) {
		return fmt.Errorf("verify connection: negotiated protocol %q is not one of %q", cs.NegotiatedProtocol, v.nextProtos)
	}
	if cs.Version != tls.VersionTLS13 {
		return fmt.Errorf("verify connection: TLS version %#04x is not TLS 1.3", cs.Version)
	}
	return nil
}

// localCertificate fetches the local certificate from src, never returning a
// nil certificate without an error.
func localCertificate(src Source) (*tls.Certificate, error) {
	if src == nil {
		return nil, errors.New("get local certificate: no source configured")
	}
	c, err := src.Certificate()
	if err != nil {
		return nil, fmt.Errorf("get local certificate: %w", err)
	}
	if c == nil || len(c.Certificate) == 0 || c.PrivateKey == nil {
		return nil, errors.New("get local certificate: source returned an empty certificate")
	}
	return c, nil
}
