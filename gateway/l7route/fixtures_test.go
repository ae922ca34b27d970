package l7route

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

var (
	cart       = ServiceKey{Namespace: "shop", Name: "cart"}
	cartCanary = ServiceKey{Namespace: "shop", Name: "cart-canary"}
)

// httpRoute builds a valid HTTPRoute on cart with the given rules.
func httpRoute(name string, rules ...Rule) *Route {
	return &Route{Kind: KindHTTP, Namespace: "shop", Name: name, Parents: []ParentRef{{Service: cart}}, Rules: rules}
}

// to is a rule sending every match to svc:8080 with weight 1.
func to(svc ServiceKey, matches ...Match) Rule {
	return Rule{Matches: matches, Backends: []Backend{{Service: svc, Port: 8080, Weight: 1}}}
}

func prefix(p string) Match { return Match{Path: PathMatch{Type: PathPrefix, Value: p}} }
func exact(p string) Match  { return Match{Path: PathMatch{Type: PathExact, Value: p}} }
func regex(p string) Match  { return Match{Path: PathMatch{Type: PathRegularExpression, Value: p}} }

func get(path string, kv ...string) *Request {
	r := &Request{Method: "GET", Header: http.Header{}}
	u, err := url.Parse(path)
	if err != nil {
		panic(err)
	}
	r.Path = u.Path
	if u.RawQuery != "" {
		r.Query = u.Query()
	}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

// lookupOf is a Lookup over a fixed catalog.
func lookupOf(services map[ServiceKey]ServiceInfo) Lookup {
	return func(k ServiceKey) (ServiceInfo, bool) {
		info, ok := services[k]
		return info, ok
	}
}

var catalog = lookupOf(map[ServiceKey]ServiceInfo{
	cart:       {Ports: []int32{8080, 8081}, Clusters: []string{"east", "west"}},
	cartCanary: {Ports: []int32{8080}, Clusters: []string{"west"}},
})

// seqRand returns the given numbers in turn (modulo n).
type seqRand struct {
	mu  sync.Mutex
	seq []int64
	i   int
}

func (s *seqRand) Int64N(n int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.seq[s.i%len(s.seq)]
	s.i++
	return v % n
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(tb testing.TB) *fakeClock {
	tb.Helper()
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// snapshotOf validates routes and returns their snapshot.
func snapshotOf(tb testing.TB, rnd Rand, routes ...*Route) *Snapshot {
	tb.Helper()
	t := NewTable(rnd)
	if err := Errors(t.Update(routes, catalog)); err != nil {
		tb.Fatalf("routes invalid: %v", err)
	}
	return t.Snapshot()
}
