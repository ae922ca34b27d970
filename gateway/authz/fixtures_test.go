package authz

import (
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const domain = "clusterset.local"

var (
	cart  = ServiceKey{Namespace: "shop", Name: "cart"}
	stock = ServiceKey{Namespace: "shop", Name: "stock"}
)

// who is the principal of ns/sa in cluster (anonymous if ns is empty).
func who(cluster, ns, sa string) Principal {
	return Principal{Cluster: cluster, Domain: domain, Namespace: ns, ServiceAccount: sa}
}

// policy builds an AuthorizationPolicy on svc in namespace shop.
func policy(name string, svc string, action Action, rules ...Rule) *AuthorizationPolicy {
	p := &AuthorizationPolicy{Spec: AuthorizationPolicySpec{Service: svc, Action: action, Rules: rules}}
	p.Namespace, p.Name = "shop", name
	return p
}

// onPorts sets p's ports and returns p.
func onPorts(p *AuthorizationPolicy, ports ...int32) *AuthorizationPolicy {
	p.Spec.Ports = ports
	return p
}

func from(srcs ...Source) Rule { return Rule{From: srcs} }

func src(cluster, ns, sa string) Source {
	return Source{Cluster: cluster, Namespace: ns, ServiceAccount: sa}
}

// to adds an operation to r.
func (r Rule) to(methods []string, paths ...string) Rule {
	r.To = append(slices.Clone(r.To), Operation{Methods: methods, Paths: paths})
	return r
}

func rateLimit(name, svc string, key RateLimitKey, requests, burst int32, ports ...int32) *RateLimitPolicy {
	p := &RateLimitPolicy{Spec: RateLimitPolicySpec{Service: svc, Key: key, Requests: requests, Burst: burst, Ports: ports}}
	p.Namespace, p.Name = "shop", name
	return p
}

// lookupOf is a Lookup over a fixed set of exported services.
func lookupOf(services map[ServiceKey][]int32) Lookup {
	return func(k ServiceKey) ([]int32, bool) {
		ports, ok := services[k]
		return ports, ok
	}
}

var exported = lookupOf(map[ServiceKey][]int32{cart: {8080, 9090}, stock: {8080}})

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_000_000, 0)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// table returns a table with set applied, failing t on any problem.
func table(t testing.TB, c *clock, set Set) *Table {
	t.Helper()
	tbl := NewTable(LimiterConfig{Now: c.Now})
	st, err := tbl.Update(set, exported)
	if err != nil {
		t.Fatal(err)
	}
	if err := Errors(st); err != nil {
		t.Fatal(err)
	}
	return tbl
}
