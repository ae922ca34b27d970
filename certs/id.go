package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidID is wrapped by every error reporting a malformed SPIFFE ID or a
// certificate that does not carry exactly one valid SPIFFE ID.
var ErrInvalidID = errors.New("certs: invalid SPIFFE ID")

const (
	spiffeScheme = "spiffe://"
	// maxIDLength bounds a whole SPIFFE ID, as the SPIFFE spec recommends.
	maxIDLength = 2048
	// maxTrustDomainLength bounds a trust domain name (a DNS name).
	maxTrustDomainLength = 255
)

// ID is a SPIFFE ID: a trust domain and a non-empty path such as "/gateway".
type ID struct {
	// TrustDomain is the lowercase trust domain name, e.g. "east.clusterset.local".
	TrustDomain string
	// Path is the workload path, starting with "/", e.g. "/gateway".
	Path string
}

// ParseID parses s strictly as a SPIFFE ID of the form
// "spiffe://<trust-domain>/<path>". The trust domain must be non-empty and use
// only the characters [a-z0-9.-_]; the path must be non-empty, start with "/",
// and consist of non-empty segments of [a-zA-Z0-9.-_] that are neither "." nor
// "..". Query, fragment, userinfo and port are rejected. Errors wrap
// ErrInvalidID.
func ParseID(s string) (ID, error) {
	if len(s) > maxIDLength {
		return ID{}, fmt.Errorf("parse id: longer than %d bytes: %w", maxIDLength, ErrInvalidID)
	}
	rest, ok := strings.CutPrefix(s, spiffeScheme)
	if !ok {
		return ID{}, fmt.Errorf("parse id %q: scheme must be %q: %w", s, spiffeScheme, ErrInvalidID)
	}
	td, path, ok := strings.Cut(rest, "/")
	if err := validateTrustDomain(td); err != nil {
		return ID{}, fmt.Errorf("parse id %q: %w", s, err)
	}
	if !ok {
		return ID{}, fmt.Errorf("parse id %q: path is empty: %w", s, ErrInvalidID)
	}
	path = "/" + path
	if err := validatePath(path); err != nil {
		return ID{}, fmt.Errorf("parse id %q: %w", s, err)
	}
	return ID{TrustDomain: td, Path: path}, nil
}

// String returns the ID in its URI form, "spiffe://<trust-domain><path>".
func (id ID) String() string {
	return spiffeScheme + id.TrustDomain + id.Path
}

// NewID returns the SPIFFE ID of component in trustDomain, i.e.
// "spiffe://<trustDomain>/<component>". component must not start with "/".
// Errors wrap ErrInvalidID.
func NewID(trustDomain, component string) (ID, error) {
	id, err := ParseID(spiffeScheme + trustDomain + "/" + component)
	if err != nil {
		return ID{}, fmt.Errorf("build id for component %q in %q: %w", component, trustDomain, err)
	}
	return id, nil
}

// IDFromCertificate returns the SPIFFE ID carried by c. The certificate must
// have exactly one URI SAN and it must parse with ParseID; otherwise the
// returned error wraps ErrInvalidID.
func IDFromCertificate(c *x509.Certificate) (ID, error) {
	if c == nil {
		return ID{}, fmt.Errorf("read id from certificate: nil certificate: %w", ErrInvalidID)
	}
	if n := len(c.URIs); n != 1 {
		return ID{}, fmt.Errorf("read id from certificate: want exactly 1 URI SAN, got %d: %w", n, ErrInvalidID)
	}
	if c.URIs[0] == nil {
		return ID{}, fmt.Errorf("read id from certificate: nil URI SAN: %w", ErrInvalidID)
	}
	id, err := ParseID(c.URIs[0].String())
	if err != nil {
		return ID{}, fmt.Errorf("read id from certificate: %w", err)
	}
	return id, nil
}

// TrustDomainFor returns the trust domain of a cluster within a clusterset:
// "<cluster>.<clustersetDomain>", lowercased, with stray surrounding dots
// removed ("east" and "clusterset.local" give "east.clusterset.local").
// The result is not validated; NewCA and ParseID validate it.
func TrustDomainFor(cluster, clustersetDomain string) string {
	c := strings.Trim(strings.ToLower(cluster), ".")
	d := strings.Trim(strings.ToLower(clustersetDomain), ".")
	return c + "." + d
}

// validateTrustDomain checks a trust domain name: non-empty, bounded, and
// made only of [a-z0-9.-_].
func validateTrustDomain(td string) error {
	if td == "" {
		return fmt.Errorf("trust domain is empty: %w", ErrInvalidID)
	}
	if len(td) > maxTrustDomainLength {
		return fmt.Errorf("trust domain longer than %d bytes: %w", maxTrustDomainLength, ErrInvalidID)
	}
	for i := 0; i < len(td); i++ {
		if !isTrustDomainChar(td[i]) {
			return fmt.Errorf("trust domain %q: invalid character %q: %w", td, td[i], ErrInvalidID)
		}
	}
	return nil
}

// validatePath checks a SPIFFE ID path: starts with "/", and every segment
// is non-empty, not "." or "..", and made only of [a-zA-Z0-9.-_].
func validatePath(p string) error {
	if p == "" || p[0] != '/' {
		return fmt.Errorf("path %q must start with %q: %w", p, "/", ErrInvalidID)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return fmt.Errorf("path %q: empty segment: %w", p, ErrInvalidID)
		case ".", "..":
			return fmt.Errorf("path %q: dot segment %q: %w", p, seg, ErrInvalidID)
		}
		for i := 0; i < len(seg); i++ {
			if !isPathChar(seg[i]) {
				return fmt.Errorf("path %q: invalid character %q: %w", p, seg[i], ErrInvalidID)
			}
		}
	}
	return nil
}

func isTrustDomainChar(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'
}

func isPathChar(c byte) bool {
	return isTrustDomainChar(c) || (c >= 'A' && c <= 'Z')
}
