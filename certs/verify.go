package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

var (
	// ErrUnknownTrustDomain is wrapped when a peer's trust domain has no
	// bundle in the BundleSource (or an empty one).
	ErrUnknownTrustDomain = errors.New("certs: unknown trust domain")
	// ErrNoPeerCertificate is wrapped when the peer presented no certificate.
	ErrNoPeerCertificate = errors.New("certs: no peer certificate")
	// ErrUnauthorized is wrapped by the errors of the Authorizers in this
	// package when a verified peer ID is not allowed.
	ErrUnauthorized = errors.New("certs: peer not authorized")
)

// maxChainLength bounds how many certificates a peer may present.
const maxChainLength = 8

// Authorizer decides whether a verified peer ID may connect. It returns nil
// to allow. A nil Authorizer allows any ID whose trust domain is known (and
// whose chain verified).
type Authorizer func(ID) error

// AuthorizeTrustDomain allows only peers in trust domain td.
func AuthorizeTrustDomain(td string) Authorizer {
	return func(id ID) error {
		if id.TrustDomain != td {
			return fmt.Errorf("check trust domain: %s is not %s: %w", id.TrustDomain, td, ErrUnauthorized)
		}
		return nil
	}
}

// AuthorizeID allows only the peer with exactly the given ID.
func AuthorizeID(want ID) Authorizer {
	return func(id ID) error {
		if id != want {
			return fmt.Errorf("check id: %s is not %s: %w", id, want, ErrUnauthorized)
		}
		return nil
	}
}

// AuthorizeMember allows a peer from any member trust domain (any trust domain
// with a bundle, which verification already requires) whose path is
// "/"+component.
func AuthorizeMember(component string) Authorizer {
	want := "/" + component
	return func(id ID) error {
		if id.Path != want {
			return fmt.Errorf("check component: path %s is not %s: %w", id.Path, want, ErrUnauthorized)
		}
		return nil
	}
}

// VerifyChain verifies a peer's certificate chain (leaf first, then any
// intermediates, DER-encoded) and returns the leaf's SPIFFE ID and the parsed
// leaf. The leaf must carry exactly one valid SPIFFE ID and must not be a CA;
// its trust domain must have a bundle in bundles (else the error wraps
// ErrUnknownTrustDomain), and the chain must verify at now with that trust
// domain's authorities as the only roots. Extended key usage is not
// restricted to a role here; the TLS configurations of this package check
// server or client authentication as appropriate.
func VerifyChain(rawCerts [][]byte, bundles BundleSource, now time.Time) (ID, *x509.Certificate, error) {
	return verifyChain(rawCerts, bundles, now, x509.ExtKeyUsageAny)
}

// verifyChain is VerifyChain requiring the extended key usage usage
// (x509.ExtKeyUsageAny for none in particular).
func verifyChain(rawCerts [][]byte, bundles BundleSource, now time.Time, usage x509.ExtKeyUsage) (ID, *x509.Certificate, error) {
	if len(rawCerts) == 0 {
		return ID{}, nil, fmt.Errorf("verify peer: %w", ErrNoPeerCertificate)
	}
	if len(rawCerts) > maxChainLength {
		return ID{}, nil, fmt.Errorf("verify peer: chain of %d certificates exceeds %d", len(rawCerts), maxChainLength)
	}
	if bundles == nil {
		return ID{}, nil, errors.New("verify peer: no bundle source")
	}
	chain := make([]*x509.Certificate, 0, len(rawCerts))
	for i, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return ID{}, nil, fmt.Errorf("verify peer: parse certificate %d: %w", i, err)
		}
		chain = append(chain, c)
	}
	leaf := chain[0]
	id, err := IDFromCertificate(leaf)
	if err != nil {
		return ID{}, nil, fmt.Errorf("verify peer: %w", err)
	}
	if leaf.IsCA {
		return ID{}, nil, fmt.Errorf("verify peer %s: leaf certificate is a CA", id)
	}
	authorities, ok := bundles.Bundle(id.TrustDomain)
	if !ok || len(authorities) == 0 {
		return ID{}, nil, fmt.Errorf("verify peer %s: %w", id, ErrUnknownTrustDomain)
	}
	roots := x509.NewCertPool()
	for _, a := range authorities {
		if a != nil {
			roots.AddCert(a)
		}
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	}); err != nil {
		return ID{}, nil, fmt.Errorf("verify peer %s: %w", id, err)
	}
	return id, leaf, nil
}

// PeerID returns the SPIFFE ID of the peer of a TLS connection, read from its
// leaf certificate. It does not verify the certificate; the configurations
// from ServerConfig and ClientConfig have already done so. The error wraps
// ErrNoPeerCertificate if the peer presented none.
func PeerID(cs tls.ConnectionState) (ID, error) {
	if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0] == nil {
		return ID{}, fmt.Errorf("read peer id: %w", ErrNoPeerCertificate)
	}
	id, err := IDFromCertificate(cs.PeerCertificates[0])
	if err != nil {
		return ID{}, fmt.Errorf("read peer id: %w", err)
	}
	return id, nil
}

// VerifyPeer re-verifies the peer of an established connection against
// bundles at now, as the handshake did, and returns its ID. Long-lived
// connections (a gateway's QUIC connection to a peer) call it when the
// bundles change or the peer's leaf nears expiry, to find connections whose
// peer would no longer be accepted: after a CA is dropped from a bundle, or
// once the peer's certificate has expired. The TLS stack itself never
// re-checks a connection after its handshake.
func VerifyPeer(cs tls.ConnectionState, bundles BundleSource, now time.Time) (ID, error) {
	raw := make([][]byte, 0, len(cs.PeerCertificates))
	for _, c := range cs.PeerCertificates {
		if c != nil {
			raw = append(raw, c.Raw)
		}
	}
	id, _, err := VerifyChain(raw, bundles, now)
	return id, err
}
