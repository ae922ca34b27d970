package authz

import (
	"slices"
)

// Request is what authorization reads of an L7 request.
type Request struct {
	// Method is the HTTP method ("GET").
	Method string
	// Path is the URL path without the query ("/api/v1/items"). It must
	// be the path the backend will act on, normalized by the caller
	// (dot segments, repeated slashes, percent-encoding): Decide compares
	// strings, so "/a/../admin" does not match a Deny on "/admin*".
	Path string
}

// DecisionReason says why a request was allowed or refused. The values
// are stable: they are reason codes on the wire and metric labels.
type DecisionReason string

const (
	// ReasonAllowedByPolicy: an Allow policy matched (and no Deny policy).
	ReasonAllowedByPolicy DecisionReason = "AllowedByPolicy"
	// ReasonDeniedByPolicy: a Deny policy matched.
	ReasonDeniedByPolicy DecisionReason = "DeniedByPolicy"
	// ReasonNoAllowMatch: Allow policies apply to the port, none matched.
	ReasonNoAllowMatch DecisionReason = "NoAllowPolicyMatched"
	// ReasonDefaultAllow: no Allow policy applies; the cluster's default
	// is Allow.
	ReasonDefaultAllow DecisionReason = "DefaultAllow"
	// ReasonDefaultDeny: no Allow policy applies; the cluster's default
	// is Deny.
	ReasonDefaultDeny DecisionReason = "DefaultDeny"
	// ReasonNoPrincipal: the caller has no identity at all (a bug in the
	// caller: unattributed callers are anonymous, not zero).
	ReasonNoPrincipal DecisionReason = "NoPrincipal"
)

// Decision is the outcome of Snapshot.Decide.
type Decision struct {
	Allowed bool
	Reason  DecisionReason
	// Policy is the namespace/name of the AuthorizationPolicy that
	// decided; empty when the default decided.
	Policy string
	// Rule is the index of the matching rule in Policy; -1 if none.
	Rule int
}

// compiledSource is a Source ready to match.
type compiledSource struct {
	cluster, namespace, serviceAccount pattern
	// workload is set when the Source names a namespace or
	// ServiceAccount: it never matches an anonymous caller.
	workload bool
}

type compiledOp struct {
	methods []string // nil: any
	paths   []pattern
}

type compiledRule struct {
	from []compiledSource
	to   []compiledOp // nil: any request (and every L4 flow)
}

type compiledPolicy struct {
	name  string // namespace/name
	deny  bool
	rules []compiledRule
}

// portPolicies are the policies that apply to one port, each list sorted
// by namespace/name.
type portPolicies struct {
	deny, allow []*compiledPolicy
}

// servicePolicies are one service's policies, merged per port ahead of
// time so that Decide does two map lookups.
type servicePolicies struct {
	anyPort portPolicies
	byPort  map[int32]*portPolicies
}

// Decide authorizes principal p to reach port of service svc; l7 is the
// request on an L7 port, nil for an L4 flow. Deny policies are evaluated
// first; then, if Allow policies apply to the port, one must match;
// otherwise the cluster's default action decides. It never locks and does
// not allocate.
func (s *Snapshot) Decide(svc ServiceKey, port int32, p Principal, l7 *Request) Decision {
	if p.IsZero() {
		return Decision{Reason: ReasonNoPrincipal, Rule: -1}
	}
	if pp := s.policies(svc, port); pp != nil {
		for _, pol := range pp.deny {
			if i := pol.match(p, l7); i >= 0 {
				return Decision{Reason: ReasonDeniedByPolicy, Policy: pol.name, Rule: i}
			}
		}
		for _, pol := range pp.allow {
			if i := pol.match(p, l7); i >= 0 {
				return Decision{Allowed: true, Reason: ReasonAllowedByPolicy, Policy: pol.name, Rule: i}
			}
		}
		if len(pp.allow) > 0 {
			return Decision{Reason: ReasonNoAllowMatch, Rule: -1}
		}
	}
	if s.defaultAction == ActionDeny {
		return Decision{Reason: ReasonDefaultDeny, Rule: -1}
	}
	return Decision{Allowed: true, Reason: ReasonDefaultAllow, Rule: -1}
}

// Applicable returns the names of the policies that apply to port of svc,
// Deny policies first, in the order Decide tries them.
func (s *Snapshot) Applicable(svc ServiceKey, port int32) []string {
	pp := s.policies(svc, port)
	if pp == nil {
		return nil
	}
	var out []string
	for _, pol := range slices.Concat(pp.deny, pp.allow) {
		out = append(out, pol.name)
	}
	return out
}

func (s *Snapshot) policies(svc ServiceKey, port int32) *portPolicies {
	sp := s.services[svc]
	if sp == nil {
		return nil
	}
	if pp, ok := sp.byPort[port]; ok {
		return pp
	}
	return &sp.anyPort
}

// match returns the index of the first rule of pol matching, or -1.
func (pol *compiledPolicy) match(p Principal, l7 *Request) int {
	for i := range pol.rules {
		if pol.rules[i].match(p, l7, pol.deny) {
			return i
		}
	}
	return -1
}

func (r *compiledRule) match(p Principal, l7 *Request, deny bool) bool {
	if !slices.ContainsFunc(r.from, func(s compiledSource) bool { return s.match(p) }) {
		return false
	}
	if r.to == nil {
		return true
	}
	if l7 == nil {
		// Operations cannot be checked on an L4 flow: an Allow rule that
		// names them grants nothing, a Deny rule refuses the whole flow.
		return deny
	}
	return slices.ContainsFunc(r.to, func(o compiledOp) bool { return o.match(l7) })
}

func (s *compiledSource) match(p Principal) bool {
	if s.workload && p.IsAnonymous() {
		return false
	}
	return s.cluster.match(p.Cluster) && s.namespace.match(p.Namespace) && s.serviceAccount.match(p.ServiceAccount)
}

func (o *compiledOp) match(r *Request) bool {
	if o.methods != nil && !slices.Contains(o.methods, r.Method) {
		return false
	}
	return o.paths == nil || slices.ContainsFunc(o.paths, func(p pattern) bool { return p.match(r.Path) })
}
