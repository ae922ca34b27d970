package authz

import (
	"fmt"
	"strings"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/lib/names"
)

// anonymousPath is the SPIFFE ID path of a cluster's anonymous identity.
const anonymousPath = "/anonymous"

// maxSubdomain bounds a ServiceAccount name (an RFC 1123 subdomain).
const maxSubdomain = 253

// Principal is the identity of a calling workload: a ServiceAccount in a
// namespace of a cluster, or the cluster's anonymous identity (a caller
// the cluster cannot attribute to a workload: host-network pods, unknown
// source addresses). Its SPIFFE ID is
// "spiffe://<cluster>.<domain>/ns/<namespace>/sa/<serviceAccount>", or
// "spiffe://<cluster>.<domain>/anonymous".
//
// Principal is comparable; the zero value is no principal (IsZero).
type Principal struct {
	// Cluster is the calling cluster: the first label of the trust domain.
	Cluster string
	// Domain is the clusterset domain: the rest of the trust domain.
	Domain string
	// Namespace and ServiceAccount are both empty for the anonymous
	// identity, both set otherwise.
	Namespace      string
	ServiceAccount string
}

// NewPrincipal returns the principal of ServiceAccount sa in namespace ns
// of cluster in clustersetDomain. Errors wrap ErrInvalidPrincipal.
func NewPrincipal(cluster, clustersetDomain, ns, sa string) (Principal, error) {
	p := Principal{Cluster: cluster, Domain: clustersetDomain, Namespace: ns, ServiceAccount: sa}
	if err := p.validate(); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// AnonymousPrincipal returns the anonymous identity of cluster in
// clustersetDomain. Errors wrap ErrInvalidPrincipal.
func AnonymousPrincipal(cluster, clustersetDomain string) (Principal, error) {
	p := Principal{Cluster: cluster, Domain: clustersetDomain}
	if err := p.validate(); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// ParsePrincipal parses a principal's SPIFFE ID strictly (certs.ParseID,
// then the Causeway workload path). Errors wrap ErrInvalidPrincipal.
func ParsePrincipal(s string) (Principal, error) {
	id, err := certs.ParseID(s)
	if err != nil {
		return Principal{}, fmt.Errorf("parse principal: %w: %w", ErrInvalidPrincipal, err)
	}
	cluster, domain, err := SplitTrustDomain(id.TrustDomain)
	if err != nil {
		return Principal{}, fmt.Errorf("parse principal %q: %w", s, err)
	}
	p := Principal{Cluster: cluster, Domain: domain}
	if id.Path != anonymousPath {
		segs := strings.Split(id.Path, "/")
		if len(segs) != 5 || segs[1] != "ns" || segs[3] != "sa" {
			return Principal{}, fmt.Errorf("parse principal %q: path must be /ns/<namespace>/sa/<serviceAccount> or %s: %w",
				s, anonymousPath, ErrInvalidPrincipal)
		}
		p.Namespace, p.ServiceAccount = segs[2], segs[4]
	}
	if err := p.validate(); err != nil {
		return Principal{}, fmt.Errorf("parse principal %q: %w", s, err)
	}
	return p, nil
}

// SplitTrustDomain splits a trust domain "<cluster>.<domain>" into the
// cluster (an RFC 1123 label) and the clusterset domain. Errors wrap
// ErrInvalidPrincipal.
func SplitTrustDomain(td string) (cluster, domain string, err error) {
	cluster, domain, ok := strings.Cut(td, ".")
	if !ok || domain == "" || !names.IsDNSLabel(cluster) {
		return "", "", fmt.Errorf("trust domain %q is not <cluster>.<domain>: %w", td, ErrInvalidPrincipal)
	}
	return cluster, domain, nil
}

// AcceptClaim returns the principal a peer claims for a flow, if the peer
// may claim it: the claimed identity must be in peerTrustDomain, the trust
// domain of the peer's authenticated connection (its certificate's SPIFFE
// ID), so a cluster can speak only for its own workloads. An empty claim
// (a peer that sends none) is the peer cluster's anonymous identity.
// Errors wrap ErrInvalidPrincipal (malformed claim or peer trust domain)
// or ErrForeignTrustDomain.
func AcceptClaim(peerTrustDomain, claimed string) (Principal, error) {
	cluster, domain, err := SplitTrustDomain(peerTrustDomain)
	if err != nil {
		return Principal{}, fmt.Errorf("accept claim: peer: %w", err)
	}
	if claimed == "" {
		return AnonymousPrincipal(cluster, domain)
	}
	p, err := ParsePrincipal(claimed)
	if err != nil {
		return Principal{}, fmt.Errorf("accept claim: %w", err)
	}
	if p.Cluster != cluster || p.Domain != domain {
		return Principal{}, fmt.Errorf("accept claim %q from peer %q: %w", claimed, peerTrustDomain, ErrForeignTrustDomain)
	}
	return p, nil
}

// IsZero reports whether p is the zero Principal (no identity at all).
func (p Principal) IsZero() bool { return p == Principal{} }

// IsAnonymous reports whether p is a cluster's anonymous identity.
func (p Principal) IsAnonymous() bool {
	return p.Cluster != "" && p.Namespace == "" && p.ServiceAccount == ""
}

// TrustDomain is "<cluster>.<domain>".
func (p Principal) TrustDomain() string { return p.Cluster + "." + p.Domain }

// ID returns p's SPIFFE ID.
func (p Principal) ID() certs.ID {
	if p.IsAnonymous() {
		return certs.ID{TrustDomain: p.TrustDomain(), Path: anonymousPath}
	}
	return certs.ID{TrustDomain: p.TrustDomain(), Path: "/ns/" + p.Namespace + "/sa/" + p.ServiceAccount}
}

// String returns p's SPIFFE ID as a URI; "" for the zero Principal.
func (p Principal) String() string {
	if p.IsZero() {
		return ""
	}
	return p.ID().String()
}

func (p Principal) validate() error {
	if !names.IsDNSLabel(p.Cluster) {
		return fmt.Errorf("cluster %q is not an RFC 1123 label: %w", p.Cluster, ErrInvalidPrincipal)
	}
	if d := p.Domain; d == "" || d[0] == '.' || d[len(d)-1] == '.' || strings.Contains(d, "..") {
		return fmt.Errorf("clusterset domain %q is not a DNS name: %w", d, ErrInvalidPrincipal)
	}
	if (p.Namespace == "") != (p.ServiceAccount == "") {
		return fmt.Errorf("namespace and serviceAccount are both set or both empty (anonymous): %w", ErrInvalidPrincipal)
	}
	if p.Namespace != "" && !names.IsDNSLabel(p.Namespace) {
		return fmt.Errorf("namespace %q is not an RFC 1123 label: %w", p.Namespace, ErrInvalidPrincipal)
	}
	if p.ServiceAccount != "" && !isDNSSubdomain(p.ServiceAccount) {
		return fmt.Errorf("serviceAccount %q is not an RFC 1123 subdomain: %w", p.ServiceAccount, ErrInvalidPrincipal)
	}
	if _, err := certs.ParseID(p.ID().String()); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidPrincipal, err)
	}
	return nil
}

// isDNSSubdomain reports whether s is an RFC 1123 subdomain as Kubernetes
// names ServiceAccounts: dot-separated labels, at most 253 bytes.
func isDNSSubdomain(s string) bool {
	if s == "" || len(s) > maxSubdomain {
		return false
	}
	for l := range strings.SplitSeq(s, ".") {
		if !names.IsDNSLabel(l) {
			return false
		}
	}
	return true
}
