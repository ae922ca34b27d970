package l7route

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Table holds the routes a gateway serves and keeps the last good version
// of each: an invalid version never replaces a valid one. Its methods are
// safe for concurrent use; readers take a Snapshot and never wait for
// Update.
type Table struct {
	rnd  Rand
	snap atomic.Pointer[Snapshot]

	mu sync.Mutex // guards good
	// good is the last valid version of every route in the last update.
	good map[RouteKey]*Route
}

// NewTable returns an empty table whose snapshots pick backends with rnd
// (nil: math/rand/v2's default source).
func NewTable(rnd Rand) *Table {
	t := &Table{rnd: rnd, good: map[RouteKey]*Route{}}
	t.snap.Store(newSnapshot(nil, rnd))
	return t
}

// Snapshot returns the routes being served.
func (t *Table) Snapshot() *Snapshot { return t.snap.Load() }

// RouteStatus is the outcome of an Update for one route.
type RouteStatus struct {
	Key RouteKey
	// Err is nil if this version of the route is valid and serving, else
	// a *RouteError.
	Err error
	// Stale is true if this version is invalid and the last valid version
	// of the route keeps serving in its place.
	Stale bool
}

// Conditions are the route's Accepted and ResolvedRefs conditions (see
// Conditions); a stale route's Accepted message says the previous version
// keeps serving.
func (s RouteStatus) Conditions() []metav1.Condition {
	cs := Conditions(s.Err)
	if s.Stale {
		for i := range cs {
			if cs[i].Type == string(gatewayv1.RouteConditionAccepted) {
				cs[i].Message += "; the last accepted version of the route keeps serving"
			}
		}
	}
	return cs
}

// Update replaces the table's routes by routes, validated with lookup (see
// Route.Validate; nil skips the reference checks). A valid route replaces
// its previous version; an invalid one keeps the previous valid version, if
// any, serving; a route not in routes is removed. A route listed twice
// keeps its first version and reports the second as invalid. It returns one
// status per route given, in order. The table keeps the *Route values:
// callers must not modify them afterwards.
func (t *Table) Update(routes []*Route, lookup Lookup) []RouteStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := make(map[RouteKey]*Route, len(routes))
	given := make(map[RouteKey]int, len(routes))
	out := make([]RouteStatus, len(routes))
	for i, r := range routes {
		key := r.Key()
		out[i].Key = key
		if j, dup := given[key]; dup {
			out[i].Err = &RouteError{Route: key, Fields: []*FieldError{
				fieldErr("metadata.name", ReasonUnsupportedValue, "%s is listed twice (first at %d)", key, j)}}
			continue
		}
		given[key] = i
		if err := r.Validate(lookup); err != nil {
			out[i].Err = err
			if prev, ok := t.good[key]; ok {
				next[key], out[i].Stale = prev, true
			}
			continue
		}
		next[key] = r
	}
	t.good = next
	serving := make([]*Route, 0, len(next))
	for _, r := range next {
		serving = append(serving, r)
	}
	slices.SortFunc(serving, func(a, b *Route) int {
		return cmp.Compare(a.Key().String(), b.Key().String())
	})
	t.snap.Store(newSnapshot(serving, t.rnd))
	return out
}

// Errors joins the errors of statuses, for static mode to fail loading;
// nil if every route is valid.
func Errors(statuses []RouteStatus) error {
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
	return fmt.Errorf("%d invalid routes: %w", len(errs), joinErrors(errs))
}
