package l7route

import (
	"fmt"
	"math"
	"time"
)

// Kind is the kind of a route: which Gateway API resource it mirrors.
type Kind string

const (
	// KindHTTP is an HTTPRoute.
	KindHTTP Kind = "HTTPRoute"
	// KindGRPC is a GRPCRoute.
	KindGRPC Kind = "GRPCRoute"
)

// ServiceKey names an imported service.
type ServiceKey struct {
	Namespace string
	Name      string
}

func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// RouteKey identifies a route; two routes with the same key are versions of
// one route.
type RouteKey struct {
	Kind      Kind
	Namespace string
	Name      string
}

func (k RouteKey) String() string { return fmt.Sprintf("%s %s/%s", k.Kind, k.Namespace, k.Name) }

// ParentRef attaches a route to an imported service (GAMMA style: the
// parent is the service's frontend, its clusterset address).
type ParentRef struct {
	Service ServiceKey
	// Port is the service port the route applies to. If zero, the route
	// applies to every port of the service.
	Port int32
}

// Route is one HTTPRoute or GRPCRoute, in the terms the data path needs.
// Field paths in errors follow the Gateway API object
// (`spec.rules[0].backendRefs[1].weight`).
type Route struct {
	Kind      Kind
	Namespace string
	Name      string
	// Created orders routes whose matches tie: the older route wins. Static
	// routes leave it zero, so their ties go by namespace/name.
	Created time.Time
	Parents []ParentRef
	Rules   []Rule

	// problems are what conversion found wrong; Validate reports them
	// with the rest.
	problems []*FieldError
}

// Key is the route's identity.
func (r *Route) Key() RouteKey { return RouteKey{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name} }

// Rule is one rule of a route: requests that satisfy any of its matches are
// sent to one of its backends, picked by weight.
type Rule struct {
	// Name is optional; if set it is unique within the route.
	Name string
	// Matches are ORed. If empty, the rule matches every request (for an
	// HTTP route, a PathPrefix "/" match).
	Matches []Match
	Filters Filters
	// Backends are picked by weight. If empty, or if every weight is zero,
	// requests that select the rule are answered 500 (ErrNoBackend).
	Backends []Backend
	Timeouts Timeouts
	// Retry is the rule's retry stanza. If nil, the default policy applies
	// (see EffectiveRetry).
	Retry *Retry
}

// PathType is how a path match compares the request path.
type PathType string

const (
	// PathExact matches the path exactly.
	PathExact PathType = "Exact"
	// PathPrefix matches the path element-wise: "/foo" matches "/foo",
	// "/foo/" and "/foo/bar" but not "/foobar".
	PathPrefix PathType = "PathPrefix"
	// PathRegularExpression matches the whole path against an RE2
	// expression.
	PathRegularExpression PathType = "RegularExpression"
)

// ValueType is how a header, query parameter or gRPC method match compares.
type ValueType string

const (
	// ValueExact compares for equality.
	ValueExact ValueType = "Exact"
	// ValueRegularExpression matches the whole value against an RE2
	// expression.
	ValueRegularExpression ValueType = "RegularExpression"
)

// PathMatch matches the request path. The zero value matches every path
// (PathPrefix "/").
type PathMatch struct {
	Type  PathType
	Value string
}

// ValueMatch matches one header (name case-insensitive) or query parameter
// (name case-sensitive). An empty Type means Exact.
type ValueMatch struct {
	Type  ValueType
	Name  string
	Value string
}

// Match is a conjunction of conditions: a request matches if it satisfies
// all of them.
type Match struct {
	Path PathMatch
	// Method, if set, is the request method (GET, POST, ...).
	Method      string
	Headers     []ValueMatch
	QueryParams []ValueMatch
	// GRPC, set only in GRPCRoute rules, matches the gRPC service and
	// method (the request path /service/method). Path, Method and
	// QueryParams are unused in GRPCRoute rules.
	GRPC *GRPCMatch
}

// GRPCMatch matches a gRPC call's service and method. At least one of them
// is set; an empty one matches anything.
type GRPCMatch struct {
	// Type is Exact (if empty) or RegularExpression, for both fields.
	Type    ValueType
	Service string
	Method  string
}

// Backend is one weighted target of a rule.
type Backend struct {
	// Service is the imported service to send to. If empty, it is the
	// service the request was addressed to (Cluster backends).
	Service ServiceKey
	// Port is the service port. If zero, the port the request was
	// addressed to.
	Port int32
	// Cluster, if set, pins the backend to the service as exported by this
	// one cluster: the Causeway extension (a backendRef of group
	// causeway.dev, kind Cluster). If empty, every cluster exporting the
	// service is a candidate, in locality order.
	Cluster string
	// Weight is the backend's share relative to its siblings' weights;
	// zero means no traffic. 0 to 1,000,000.
	Weight int32
	// Filters apply after the rule's filters, only to requests sent to
	// this backend.
	Filters Filters
}

// MaxWeight is the largest backend weight Gateway API allows.
const MaxWeight = 1_000_000

// Header is one header name and value.
type Header struct {
	Name  string
	Value string
}

// HeaderModifier edits headers: Set replaces, Add appends, Remove deletes,
// applied in that order.
type HeaderModifier struct {
	Set    []Header
	Add    []Header
	Remove []string
}

// Filters are the filters of a rule or backend that Causeway supports.
type Filters struct {
	// RequestHeaders edits the request before it is sent to the backend.
	RequestHeaders *HeaderModifier
	// ResponseHeaders edits the response before it is returned.
	ResponseHeaders *HeaderModifier
}

// Unlimited is a timeout that was set to "0s": it disables the timeout.
const Unlimited time.Duration = math.MaxInt64

// Timeouts bound a request. A zero field was not set: the gateway's default
// applies. Unlimited means the route disabled the timeout.
type Timeouts struct {
	// Request bounds the whole request, every try and backoff included;
	// when it passes, the client gets 504.
	Request time.Duration
	// BackendRequest bounds one try to a backend; at most Request.
	BackendRequest time.Duration
}

// Retry is a rule's retry stanza (Gateway API HTTPRouteRetry).
type Retry struct {
	// Codes are the response statuses that are retried (400-599).
	Codes []int
	// Attempts is the maximum number of retries after the first try. If
	// zero, DefaultAttempts.
	Attempts int
	// Backoff is the least wait before a retry. If zero, DefaultBackoff.
	Backoff time.Duration
	// NonIdempotent allows retrying POST, PATCH and other methods that
	// are not idempotent after they may have reached the backend. Set by
	// the causeway.dev/retry-non-idempotent annotation.
	NonIdempotent bool
}
