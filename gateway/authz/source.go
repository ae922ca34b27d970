package authz

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// SourceResolver maps the address of a local client (what the egress
// gateway sees) to the client's workload identity. Implementations return
// the cluster's anonymous identity for an address they cannot attribute,
// never the zero Principal, and are safe for concurrent use. The static
// mode's StaticResolver maps address ranges; the Kubernetes mode maps the
// IPs of running pods to their namespace and ServiceAccount.
type SourceResolver interface {
	Resolve(addr netip.Addr) Principal
}

// Identity maps a range of client addresses to a workload identity in
// static mode: the clients in CIDR run as ServiceAccount in Namespace of
// the local cluster.
type Identity struct {
	// CIDR is the client address range, e.g. 10.1.0.0/16 or 10.1.2.3/32.
	// Ranges may nest (the most specific one wins) but not repeat.
	CIDR string `json:"cidr" want:"an address range like 10.1.0.0/16"`
	// Namespace is an RFC 1123 label.
	Namespace string `json:"namespace"`
	// ServiceAccount is an RFC 1123 subdomain.
	ServiceAccount string `json:"serviceAccount"`
}

// StaticResolver resolves client addresses by the most specific matching
// range of a list of Identity; an address in no range is anonymous. It is
// immutable and safe for concurrent use.
type StaticResolver struct {
	anonymous Principal
	// lengths are the distinct prefix lengths in use, longest first,
	// per family (0: IPv4, 1: IPv6).
	lengths [2][]int
	byRange map[netip.Prefix]Principal
}

var _ SourceResolver = (*StaticResolver)(nil)

// NewStaticResolver validates ids and returns their resolver for the local
// cluster in clustersetDomain. The error lists every invalid identity, each
// *FieldError naming its field ("identities[2].cidr").
func NewStaticResolver(cluster, clustersetDomain string, ids []Identity) (*StaticResolver, error) {
	anon, err := AnonymousPrincipal(cluster, clustersetDomain)
	if err != nil {
		return nil, fmt.Errorf("static identities: %w", err)
	}
	r := &StaticResolver{anonymous: anon, byRange: make(map[netip.Prefix]Principal, len(ids))}
	where := make(map[netip.Prefix]int, len(ids))
	var errs []error
	for i, id := range ids {
		f := fmt.Sprintf("identities[%d]", i)
		pfx, ferr := parseRange(f+".cidr", id.CIDR)
		if j, dup := where[pfx]; ferr == nil && dup {
			ferr = fieldErr(f+".cidr", "%s is also identities[%d]: a range maps to one identity", pfx, j)
		}
		if ferr != nil {
			errs = append(errs, ferr)
		}
		p, perr := NewPrincipal(cluster, clustersetDomain, id.Namespace, id.ServiceAccount)
		if perr != nil {
			errs = append(errs, &FieldError{Field: f, Reason: ReasonInvalid, Detail: perr.Error(), Err: perr})
		}
		if ferr != nil || perr != nil {
			continue
		}
		where[pfx] = i
		r.byRange[pfx] = p
		fam := family(pfx.Addr())
		if !slices.Contains(r.lengths[fam], pfx.Bits()) {
			r.lengths[fam] = append(r.lengths[fam], pfx.Bits())
		}
	}
	if len(errs) > 0 {
		return nil, joined(errs)
	}
	for i := range r.lengths {
		slices.Sort(r.lengths[i])
		slices.Reverse(r.lengths[i])
	}
	return r, nil
}

// Resolve returns the identity of the most specific range holding addr
// (IPv4-mapped IPv6 addresses count as IPv4), else the anonymous identity.
func (r *StaticResolver) Resolve(addr netip.Addr) Principal {
	addr = addr.Unmap().WithZone("")
	for _, bits := range r.lengths[family(addr)] {
		pfx, err := addr.Prefix(bits)
		if err != nil {
			continue
		}
		if p, ok := r.byRange[pfx]; ok {
			return p
		}
	}
	return r.anonymous
}

// Len is the number of address ranges r maps.
func (r *StaticResolver) Len() int { return len(r.byRange) }

// Anonymous returns the identity of addresses in no range.
func (r *StaticResolver) Anonymous() Principal { return r.anonymous }

func family(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// parseRange parses a CIDR strictly: the canonical form, without host
// bits, zones or IPv4-mapped IPv6 ranges.
func parseRange(field, s string) (netip.Prefix, *FieldError) {
	if s == "" {
		return netip.Prefix{}, fieldErr(field, "required")
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fieldErr(field, "%q is not an address range like 10.1.0.0/16 or fd00::/64", s)
	}
	if pfx.Addr().Is4In6() {
		return netip.Prefix{}, fieldErr(field, "%q is an IPv4-mapped IPv6 range: write the IPv4 range", s)
	}
	if m := pfx.Masked(); m != pfx {
		return netip.Prefix{}, fieldErr(field, "%q has bits set after the prefix length: did you mean %s?", s, m)
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fieldErr(field, "%q: zones are not allowed", s)
	}
	return pfx, nil
}
