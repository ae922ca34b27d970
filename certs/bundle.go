package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
)

// BundleSource looks up the trust bundle (the set of CA certificates) of a
// trust domain. ok is false when the trust domain is not known.
type BundleSource interface {
	// Bundle returns the authorities of trustDomain, and whether it is known.
	// Callers must not modify the returned certificates.
	Bundle(trustDomain string) ([]*x509.Certificate, bool)
}

// BundleSet is a concurrency-safe, mutable BundleSource mapping trust domains
// to their authorities. Create it with NewBundleSet.
type BundleSet struct {
	mu      sync.RWMutex
	bundles map[string][]*x509.Certificate
}

var _ BundleSource = (*BundleSet)(nil)

// NewBundleSet returns an empty BundleSet.
func NewBundleSet() *BundleSet {
	return &BundleSet{bundles: make(map[string][]*x509.Certificate)}
}

// Set replaces the authorities of trustDomain. The slice is copied and nil
// entries are dropped; the certificates themselves are shared.
func (s *BundleSet) Set(trustDomain string, authorities []*x509.Certificate) {
	cp := make([]*x509.Certificate, 0, len(authorities))
	for _, c := range authorities {
		if c != nil {
			cp = append(cp, c)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bundles == nil {
		s.bundles = make(map[string][]*x509.Certificate)
	}
	s.bundles[trustDomain] = cp
}

// Delete forgets trustDomain; peers from it are rejected from then on.
func (s *BundleSet) Delete(trustDomain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bundles, trustDomain)
}

// Bundle returns a copy of the authority slice of trustDomain, and whether
// the trust domain is known.
func (s *BundleSet) Bundle(trustDomain string) ([]*x509.Certificate, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.bundles[trustDomain]
	if !ok {
		return nil, false
	}
	return slices.Clone(b), true
}

// TrustDomains returns the known trust domains, sorted.
func (s *BundleSet) TrustDomains() []string {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	tds := make([]string, 0, len(s.bundles))
	for td := range s.bundles {
		tds = append(tds, td)
	}
	slices.Sort(tds)
	return tds
}

// ParseAuthorities parses DER-encoded CA certificates. Every certificate must
// be a CA (basic constraints valid, IsCA); an error names the offending index.
func ParseAuthorities(der [][]byte) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(der))
	for i, d := range der {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("parse authority %d: %w", i, err)
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("parse authority %d: certificate is not a CA", i)
		}
		out = append(out, c)
	}
	return out, nil
}

// AuthoritiesDER returns the DER encoding of each certificate, in order,
// skipping nil entries. The returned byte slices are copies.
func AuthoritiesDER(certs []*x509.Certificate) [][]byte {
	out := make([][]byte, 0, len(certs))
	for _, c := range certs {
		if c != nil {
			out = append(out, slices.Clone(c.Raw))
		}
	}
	return out
}

// ErrBundleMismatch is wrapped when a published trust bundle claims a
// cluster or trust domain other than the one its etcd key belongs to.
var ErrBundleMismatch = errors.New("certs: trust bundle does not belong to its publisher")

// ClusterOfTrustDomain returns the cluster a trust domain belongs to: its
// first label ("east" for "east.clusterset.local").
func ClusterOfTrustDomain(td string) string {
	c, _, _ := strings.Cut(td, ".")
	return c
}

// CheckPublishedBundle validates a trust bundle before it is trusted.
// keyCluster is the cluster whose etcd key (/causeway/v1/bundles/<cluster>)
// held the record: the only thing its publisher cannot lie about, since
// each cluster may write only its own keys. The record must name
// keyCluster, its trust domain must belong to keyCluster
// (ClusterOfTrustDomain), and every authority must be a CA naming that
// trust domain; otherwise the error wraps ErrBundleMismatch (or reports a
// malformed certificate). So a cluster, even one whose federator is
// compromised, can publish authorities for its own trust domain only and
// never mint identities of another cluster. It returns the trust domain
// and the authorities.
func CheckPublishedBundle(keyCluster string, b *causewayv1.TrustBundle) (string, []*x509.Certificate, error) {
	td := b.GetTrustDomain()
	switch {
	case b.GetCluster() != keyCluster:
		return "", nil, fmt.Errorf("check bundle of %s: record names cluster %q: %w", keyCluster, b.GetCluster(), ErrBundleMismatch)
	case ClusterOfTrustDomain(td) != keyCluster:
		return "", nil, fmt.Errorf("check bundle of %s: trust domain %q is not the cluster's: %w", keyCluster, td, ErrBundleMismatch)
	}
	if err := validateTrustDomain(td); err != nil {
		return "", nil, fmt.Errorf("check bundle of %s: %w", keyCluster, err)
	}
	cas, err := ParseAuthorities(b.GetX509Authorities())
	if err != nil {
		return "", nil, fmt.Errorf("check bundle of %s: %w", keyCluster, err)
	}
	if len(cas) == 0 {
		return "", nil, fmt.Errorf("check bundle of %s: no authority", keyCluster)
	}
	for _, c := range cas {
		got, err := TrustDomainOfCA(c)
		if err != nil {
			return "", nil, fmt.Errorf("check bundle of %s: CA %s: %w", keyCluster, SerialHex(c), err)
		}
		if got != td {
			return "", nil, fmt.Errorf("check bundle of %s: CA %s names trust domain %s, not %s: %w",
				keyCluster, SerialHex(c), got, td, ErrBundleMismatch)
		}
	}
	return td, cas, nil
}
