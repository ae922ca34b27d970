package authz

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Set is everything a Table serves: the cluster's default action and its
// policies of both kinds (from the Kubernetes API or the static file).
type Set struct {
	// DefaultAction applies to a service port no Allow policy applies to.
	// If empty, Allow (Causeway's behaviour before policies).
	DefaultAction Action
	Policies      []*AuthorizationPolicy
	RateLimits    []*RateLimitPolicy
}

// Snapshot is an immutable, compiled Set: Decide and Limit read it without
// locks. Only the rate limiters' buckets change.
type Snapshot struct {
	defaultAction Action
	services      map[ServiceKey]*servicePolicies
	limits        map[ServiceKey]*serviceLimits
}

// DefaultAction is the action for ports no Allow policy applies to.
func (s *Snapshot) DefaultAction() Action { return s.defaultAction }

// Table holds the policies a gateway enforces and keeps the last good
// version of each: an invalid version never replaces a valid one. Its
// methods are safe for concurrent use; readers take a Snapshot and never
// wait for Update.
type Table struct {
	limiter LimiterConfig
	snap    atomic.Pointer[Snapshot]

	mu sync.Mutex // guards the fields below
	// goodAuthz and goodLimits are the valid versions serving, by key.
	goodAuthz  map[PolicyKey]*AuthorizationPolicy
	goodLimits map[PolicyKey]*RateLimitPolicy
	// buckets are the live rate limiters, kept across updates for
	// policies whose bucket did not change.
	buckets map[limiterID]*limiter
}

// NewTable returns a table serving no policies with default action Allow;
// its rate limiters use cfg.
func NewTable(cfg LimiterConfig) *Table {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = defaultMaxKeys
	}
	t := &Table{limiter: cfg, goodAuthz: map[PolicyKey]*AuthorizationPolicy{},
		goodLimits: map[PolicyKey]*RateLimitPolicy{}, buckets: map[limiterID]*limiter{}}
	t.snap.Store(&Snapshot{defaultAction: ActionAllow})
	return t
}

// Snapshot returns the policies being enforced.
func (t *Table) Snapshot() *Snapshot { return t.snap.Load() }

// Status is the outcome of an Update for one policy.
type Status struct {
	// Kind is KindAuthorizationPolicy or KindRateLimitPolicy.
	Kind string
	Key  PolicyKey
	// Err is nil if this version is valid, its references resolve and it
	// is enforced; else a *PolicyError. A policy whose only problems are
	// references (PolicyError.Invalid is false) is enforced.
	Err error
	// Stale is true if this version is invalid and its last valid version
	// is enforced in its place.
	Stale bool
}

// Enforced reports whether this version of the policy is enforced.
func (s Status) Enforced() bool { return s.Err == nil || !isInvalid(s.Err) }

// Conditions are the policy's Accepted and ResolvedRefs conditions (see
// Conditions); a stale policy's Accepted message says which version is
// enforced instead.
func (s Status) Conditions() []metav1.Condition {
	cs := Conditions(s.Err)
	if s.Stale {
		cs[0].Message += "; the last accepted version of the policy is enforced"
	} else if !s.Enforced() {
		cs[0].Message += "; the policy is not enforced"
	}
	return cs
}

// Update replaces the table's policies by set's, validated with lookup
// (nil skips the reference checks). A valid policy replaces its previous
// version; an invalid one keeps the previous valid version, if any,
// enforced; a policy not in set is removed. A policy listed twice keeps
// its first version and reports the second. Update returns one status per
// policy given (AuthorizationPolicies first, in order, then
// RateLimitPolicies), or only an error, changing nothing, if
// set.DefaultAction is invalid. The table keeps the policy values: callers
// must not modify them afterwards.
func (t *Table) Update(set Set, lookup Lookup) ([]Status, error) {
	def := set.DefaultAction
	switch def {
	case "":
		def = ActionAllow
	case ActionAllow, ActionDeny:
	default:
		return nil, fmt.Errorf("defaultAction: unsupported value %q, want Allow or Deny", def)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Status
	var authz []*AuthorizationPolicy
	t.goodAuthz, authz, out = updateKind(KindAuthorizationPolicy, t.goodAuthz, set.Policies, lookup, out)
	var limits []*RateLimitPolicy
	t.goodLimits, limits, out = updateKind(KindRateLimitPolicy, t.goodLimits, set.RateLimits, lookup, out)
	next := &Snapshot{defaultAction: def, services: compileServices(authz)}
	next.limits, t.buckets = t.compileLimits(limits)
	t.snap.Store(next)
	return out, nil
}

// versioned is what updateKind needs of either kind.
type versioned interface {
	Key() PolicyKey
	Validate(Lookup) error
}

// updateKind applies the last-good rule to one kind: it returns the next
// good versions, the list of them to serve and the statuses appended.
func updateKind[P versioned](kind string, good map[PolicyKey]P, given []P, lookup Lookup, out []Status) (map[PolicyKey]P, []P, []Status) {
	next := make(map[PolicyKey]P, len(given))
	first := make(map[PolicyKey]int, len(given))
	for i, p := range given {
		key := p.Key()
		st := Status{Kind: kind, Key: key}
		if j, dup := first[key]; dup {
			st.Err = &PolicyError{Kind: kind, Policy: key, Fields: []*FieldError{{Field: "metadata.name",
				Reason: ReasonDuplicate, Detail: fmt.Sprintf("%s is listed twice (first at %d)", key, j)}}}
			out = append(out, st)
			continue
		}
		first[key] = i
		st.Err = p.Validate(lookup)
		if st.Enforced() {
			next[key] = p
		} else if prev, ok := good[key]; ok {
			next[key], st.Stale = prev, true
		}
		out = append(out, st)
	}
	serving := make([]P, 0, len(next))
	for _, p := range next {
		serving = append(serving, p)
	}
	return next, serving, out
}

func isInvalid(err error) bool {
	var pe *PolicyError
	return !errors.As(err, &pe) || pe.Invalid()
}

// Errors joins the errors of statuses, for static mode to fail loading;
// nil if every policy is valid and resolves.
func Errors(statuses []Status) error {
	var errs []error
	for _, s := range statuses {
		if s.Err != nil {
			errs = append(errs, s.Err)
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return fmt.Errorf("%d invalid policies: %w", len(errs), joined(errs))
}
