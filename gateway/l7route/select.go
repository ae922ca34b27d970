package l7route

import (
	"cmp"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Rand is the random source of backend picks and backoff jitter;
// *math/rand/v2.Rand is one. It must be safe for concurrent use if the
// caller shares it.
type Rand interface {
	Int64N(n int64) int64
}

// globalRand is math/rand/v2's concurrency-safe default source.
type globalRand struct{}

func (globalRand) Int64N(n int64) int64 { return rand.Int64N(n) }

// Target is where one request goes: a service port, on every cluster
// exporting it (Cluster empty, in locality order) or on one cluster.
type Target struct {
	Service ServiceKey
	Port    int32
	Cluster string
}

// Selection is the outcome of Select for one request.
type Selection struct {
	// Route and Rule are what matched; both nil if no route is attached
	// to the addressed service (the request goes to the service as a
	// whole, under the default retry policy).
	Route     *Route
	Rule      *Rule
	RuleIndex int
	// Backend is the backend picked; nil with Route.
	Backend *Backend
	Target  Target
}

// Retry is the request's retry policy.
func (s *Selection) Retry() RetryPolicy {
	if s.Rule == nil {
		return EffectiveRetry(nil)
	}
	return EffectiveRetry(s.Rule.Retry)
}

// Timeouts are the request's timeouts (zero: the gateway's defaults).
func (s *Selection) Timeouts() Timeouts {
	if s.Rule == nil {
		return Timeouts{}
	}
	return s.Rule.Timeouts
}

// EditRequest applies the rule's then the backend's request header filters.
func (s *Selection) EditRequest(h http.Header) {
	if s.Rule != nil {
		s.Rule.Filters.RequestHeaders.Apply(h)
	}
	if s.Backend != nil {
		s.Backend.Filters.RequestHeaders.Apply(h)
	}
}

// EditResponse applies the rule's then the backend's response header
// filters.
func (s *Selection) EditResponse(h http.Header) {
	if s.Rule != nil {
		s.Rule.Filters.ResponseHeaders.Apply(h)
	}
	if s.Backend != nil {
		s.Backend.Filters.ResponseHeaders.Apply(h)
	}
}

// entry is one match of one rule of one route, compiled, in a service's
// precedence-ordered list.
type entry struct {
	rank    rank
	route   *Route
	rule    int
	match   int
	port    int32 // 0: every port
	matcher *matcher
}

// serviceRoutes are the entries attached to one service, best first.
type serviceRoutes struct {
	grpc, http []*entry
}

// Snapshot is an immutable set of valid routes indexed by parent service.
// Its methods are safe for concurrent use.
type Snapshot struct {
	services map[ServiceKey]*serviceRoutes
	rnd      Rand
}

// newSnapshot indexes routes, which must be valid. rnd nil means
// math/rand/v2's default source.
func newSnapshot(routes []*Route, rnd Rand) *Snapshot {
	if rnd == nil {
		rnd = globalRand{}
	}
	s := &Snapshot{services: map[ServiceKey]*serviceRoutes{}, rnd: rnd}
	for _, r := range routes {
		for _, p := range r.Parents {
			sr := s.services[p.Service]
			if sr == nil {
				sr = &serviceRoutes{}
				s.services[p.Service] = sr
			}
			for i := range r.Rules {
				sr.add(r, i, p.Port)
			}
		}
	}
	for _, sr := range s.services {
		slices.SortStableFunc(sr.grpc, compareEntries)
		slices.SortStableFunc(sr.http, compareEntries)
	}
	return s
}

func (sr *serviceRoutes) add(r *Route, rule int, port int32) {
	matches := r.Rules[rule].Matches
	if len(matches) == 0 {
		matches = []Match{{}}
	}
	for j, m := range matches {
		e := &entry{route: r, rule: rule, match: j, port: port}
		var err *FieldError
		if r.Kind == KindGRPC {
			e.matcher, e.rank, err = compileGRPC(m)
		} else {
			e.matcher, e.rank, err = compileHTTP(m)
		}
		if err != nil {
			continue // Validate rejects such routes; a hand-built one loses the match
		}
		if r.Kind == KindGRPC {
			sr.grpc = append(sr.grpc, e)
		} else {
			sr.http = append(sr.http, e)
		}
	}
}

// compareEntries orders by rank (larger first), then the older route, then
// namespace/name, then rule and match order.
func compareEntries(a, b *entry) int {
	if c := slices.Compare(b.rank[:], a.rank[:]); c != 0 {
		return c
	}
	if c := compareTime(a.route.Created, b.route.Created); c != 0 {
		return c
	}
	if c := strings.Compare(a.route.Namespace+"/"+a.route.Name, b.route.Namespace+"/"+b.route.Name); c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(a.rule, b.rule), cmp.Compare(a.match, b.match))
}

func compareTime(a, b time.Time) int { return a.Compare(b) }

// Attached reports whether any route is attached to port of svc.
func (s *Snapshot) Attached(svc ServiceKey, port int32) bool {
	sr := s.services[svc]
	if sr == nil {
		return false
	}
	for _, list := range [][]*entry{sr.grpc, sr.http} {
		for _, e := range list {
			if e.port == 0 || e.port == port {
				return true
			}
		}
	}
	return false
}

// Select picks the rule and backend for req, addressed to port of the
// imported service svc. If no route is attached there, the selection is
// the service itself (Route nil). Otherwise the best matching rule by
// precedence wins (for gRPC calls, GRPCRoutes are tried before HTTPRoutes);
// no match is ErrNoRoute (404) and a rule without a weighted backend is
// ErrNoBackend (500, the selection still names the route and rule).
func (s *Snapshot) Select(svc ServiceKey, port int32, req *Request) (Selection, error) {
	if !s.Attached(svc, port) {
		return Selection{Target: Target{Service: svc, Port: port}}, nil
	}
	sr := s.services[svc]
	var e *entry
	if req.IsGRPC() {
		e = firstMatch(sr.grpc, port, req)
	}
	if e == nil {
		e = firstMatch(sr.http, port, req)
	}
	if e == nil {
		return Selection{}, ErrNoRoute
	}
	sel := Selection{Route: e.route, Rule: &e.route.Rules[e.rule], RuleIndex: e.rule}
	i := PickBackend(sel.Rule.Backends, s.rnd)
	if i < 0 {
		return sel, ErrNoBackend
	}
	b := &sel.Rule.Backends[i]
	sel.Backend = b
	sel.Target = Target{Service: b.Service, Port: b.Port, Cluster: b.Cluster}
	if sel.Target.Service == (ServiceKey{}) {
		sel.Target.Service = svc
	}
	if sel.Target.Port == 0 {
		sel.Target.Port = port
	}
	return sel, nil
}

func firstMatch(list []*entry, port int32, req *Request) *entry {
	for _, e := range list {
		if (e.port == 0 || e.port == port) && e.matcher.matches(req) {
			return e
		}
	}
	return nil
}

// PickBackend returns the index of a backend picked at random in
// proportion to the weights, or -1 if no backend has a weight above zero.
// rnd nil means math/rand/v2's default source.
func PickBackend(bs []Backend, rnd Rand) int {
	var total int64
	for _, b := range bs {
		total += int64(max(b.Weight, 0))
	}
	if total == 0 {
		return -1
	}
	if rnd == nil {
		rnd = globalRand{}
	}
	n := rnd.Int64N(total)
	for i, b := range bs {
		if w := int64(max(b.Weight, 0)); n < w {
			return i
		} else {
			n -= w
		}
	}
	return -1 // unreachable
}
