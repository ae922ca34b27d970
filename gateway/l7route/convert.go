package l7route

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const (
	// ExtensionGroup is the API group of Causeway's backendRef extension.
	ExtensionGroup = "causeway.dev"
	// ClusterKind is the backendRef kind, in ExtensionGroup, that names one
	// cluster (by name) of the service the request was addressed to, so a
	// rule can weight or pin clusters of one imported service.
	ClusterKind = "Cluster"
	// AnnotationRetryNonIdempotent on a route allows its retry stanzas to
	// retry methods that are not idempotent (POST, PATCH, ...): "true" for
	// every rule, or a comma-separated list of rule names.
	AnnotationRetryNonIdempotent = "causeway.dev/retry-non-idempotent"
	// MCSGroup is the group of ServiceImport (Multi-Cluster Services API).
	MCSGroup = "multicluster.x-k8s.io"
)

// gatewayDuration is GEP-2257's duration syntax.
var gatewayDuration = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

// IsMeshParent reports whether ref names an imported service, the parent
// kinds Causeway serves: group "" kind Service, or group
// multicluster.x-k8s.io kind ServiceImport. Routes may also name other
// parents (Gateways); Causeway ignores those and writes no status for them.
// A missing group with kind Service counts as group "": the API server
// never leaves the group out (it defaults it to gateway.networking.k8s.io,
// so write group: "" in Kubernetes), but the static format has no
// defaulting and this spares its users the empty group.
func IsMeshParent(ref gatewayv1.ParentReference) bool {
	kind := deref(ref.Kind, "Gateway")
	if ref.Group == nil {
		return kind == "Service"
	}
	group := *ref.Group
	return (group == "" && kind == "Service") || (group == MCSGroup && kind == "ServiceImport")
}

// FromHTTPRoute converts an HTTPRoute. It always returns a route (with at
// least its key); the error, a *RouteError, lists what could not be
// converted, and the route's Validate reports it too, so a Table keeps the
// route's last good version.
func FromHTTPRoute(hr *gatewayv1.HTTPRoute) (*Route, error) {
	c := newConverter(KindHTTP, hr.Namespace, hr.Name)
	c.route.Created = hr.CreationTimestamp.Time
	c.parents(hr.Spec.ParentRefs)
	for i, rule := range hr.Spec.Rules {
		c.route.Rules = append(c.route.Rules, c.httpRule(fmt.Sprintf("spec.rules[%d]", i), rule))
	}
	c.retryAnnotation(hr.Annotations)
	return c.done()
}

type converter struct {
	route *Route
}

func newConverter(kind Kind, ns, name string) *converter {
	return &converter{route: &Route{Kind: kind, Namespace: ns, Name: name}}
}

func (c *converter) add(e *FieldError) { c.route.problems = append(c.route.problems, e) }

func (c *converter) done() (*Route, error) {
	if err := c.route.Validate(nil); err != nil {
		return c.route, err
	}
	return c.route, nil
}

func (c *converter) parents(refs []gatewayv1.ParentReference) {
	for i, ref := range refs {
		if !IsMeshParent(ref) {
			continue
		}
		f := fmt.Sprintf("spec.parentRefs[%d]", i)
		if ref.SectionName != nil {
			c.add(fieldErr(f+".sectionName", ReasonUnsupportedValue, "not supported on a service parent: name the port with port"))
		}
		c.route.Parents = append(c.route.Parents, ParentRef{
			Service: ServiceKey{Namespace: string(deref(ref.Namespace, gatewayv1.Namespace(c.route.Namespace))), Name: string(ref.Name)},
			Port:    int32(deref(ref.Port, 0)),
		})
	}
}

func (c *converter) httpRule(f string, in gatewayv1.HTTPRouteRule) Rule {
	rule := Rule{Name: string(deref(in.Name, ""))}
	for j, m := range in.Matches {
		rule.Matches = append(rule.Matches, c.httpMatch(fmt.Sprintf("%s.matches[%d]", f, j), m))
	}
	fs := make([]filterIn, len(in.Filters))
	for j, x := range in.Filters {
		fs[j] = filterIn{typ: string(x.Type), req: x.RequestHeaderModifier, resp: x.ResponseHeaderModifier}
	}
	rule.Filters = c.filters(f+".filters", fs)
	for j, b := range in.BackendRefs {
		bf := fmt.Sprintf("%s.backendRefs[%d]", f, j)
		fs := make([]filterIn, len(b.Filters))
		for k, x := range b.Filters {
			fs[k] = filterIn{typ: string(x.Type), req: x.RequestHeaderModifier, resp: x.ResponseHeaderModifier}
		}
		rule.Backends = append(rule.Backends, c.backend(bf, b.BackendRef, fs))
	}
	if t := in.Timeouts; t != nil {
		rule.Timeouts.Request = c.duration(f+".timeouts.request", t.Request)
		rule.Timeouts.BackendRequest = c.duration(f+".timeouts.backendRequest", t.BackendRequest)
	}
	if r := in.Retry; r != nil {
		rule.Retry = c.retry(f+".retry", r)
	}
	if in.SessionPersistence != nil {
		c.add(fieldErr(f+".sessionPersistence", ReasonUnsupportedValue, "not supported"))
	}
	return rule
}

func (c *converter) httpMatch(f string, in gatewayv1.HTTPRouteMatch) Match {
	m := Match{Path: PathMatch{Type: PathPrefix, Value: "/"}}
	if p := in.Path; p != nil {
		m.Path = PathMatch{Type: PathType(deref(p.Type, gatewayv1.PathMatchPathPrefix)), Value: deref(p.Value, "/")}
	}
	m.Method = string(deref(in.Method, ""))
	for _, h := range in.Headers {
		m.Headers = append(m.Headers, ValueMatch{Type: ValueType(deref(h.Type, gatewayv1.HeaderMatchExact)), Name: string(h.Name), Value: h.Value})
	}
	for _, q := range in.QueryParams {
		m.QueryParams = append(m.QueryParams, ValueMatch{Type: ValueType(deref(q.Type, gatewayv1.QueryParamMatchExact)), Name: string(q.Name), Value: q.Value})
	}
	return m
}

// filterIn is the part of an HTTPRouteFilter or GRPCRouteFilter that
// conversion reads.
type filterIn struct {
	typ       string
	req, resp *gatewayv1.HTTPHeaderFilter
}

func (c *converter) filters(f string, in []filterIn) Filters {
	var out Filters
	for i, x := range in {
		ff := fmt.Sprintf("%s[%d]", f, i)
		var into **HeaderModifier
		var from *gatewayv1.HTTPHeaderFilter
		switch x.typ {
		case string(gatewayv1.HTTPRouteFilterRequestHeaderModifier):
			into, from = &out.RequestHeaders, x.req
		case string(gatewayv1.HTTPRouteFilterResponseHeaderModifier):
			into, from = &out.ResponseHeaders, x.resp
		default:
			c.add(fieldErr(ff+".type", ReasonUnsupportedValue, "filter %q is not supported (Causeway supports RequestHeaderModifier and ResponseHeaderModifier)", x.typ))
			continue
		}
		switch {
		case *into != nil:
			c.add(fieldErr(ff+".type", ReasonUnsupportedValue, "%s given twice", x.typ))
		case from == nil:
			c.add(fieldErr(ff, ReasonUnsupportedValue, "%s filter without its %s field", x.typ, lowerFirst(x.typ)))
		default:
			*into = headerModifier(from)
		}
	}
	return out
}

func headerModifier(in *gatewayv1.HTTPHeaderFilter) *HeaderModifier {
	m := &HeaderModifier{Remove: slices.Clone(in.Remove)}
	for _, h := range in.Set {
		m.Set = append(m.Set, Header{Name: string(h.Name), Value: h.Value})
	}
	for _, h := range in.Add {
		m.Add = append(m.Add, Header{Name: string(h.Name), Value: h.Value})
	}
	return m
}

func (c *converter) backend(f string, in gatewayv1.BackendRef, filters []filterIn) Backend {
	b := Backend{Weight: deref(in.Weight, 1), Port: int32(deref(in.Port, 0)), Filters: c.filters(f+".filters", filters)}
	group, kind := string(deref(in.Group, "")), string(deref(in.Kind, "Service"))
	switch {
	case group == ExtensionGroup && kind == ClusterKind:
		b.Cluster = string(in.Name)
		if in.Namespace != nil {
			c.add(fieldErr(f+".namespace", ReasonUnsupportedValue, "a %s backend names no namespace: its service is the one the request was addressed to", ClusterKind))
		}
	case group == "" && kind == "Service", group == MCSGroup && kind == "ServiceImport":
		b.Service = ServiceKey{Namespace: string(deref(in.Namespace, gatewayv1.Namespace(c.route.Namespace))), Name: string(in.Name)}
	default:
		c.add(fieldErr(f, ReasonInvalidKind, "group %q kind %q is not a backend Causeway serves (Service, %s ServiceImport, %s %s)",
			group, kind, MCSGroup, ExtensionGroup, ClusterKind))
	}
	return b
}

// duration parses a Gateway API duration; "0s" is Unlimited.
func (c *converter) duration(f string, d *gatewayv1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	v, err := parseDuration(string(*d))
	if err != nil {
		c.add(invalid(f, err))
		return 0
	}
	return v
}

// parseDuration parses a GEP-2257 duration; zero is Unlimited.
func parseDuration(s string) (time.Duration, error) {
	if !gatewayDuration.MatchString(s) {
		return 0, fmt.Errorf("%q is not a duration like 500ms, 10s or 1m30s (units h, m, s, ms)", s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("parse duration %q: %w", s, err)
	}
	if v == 0 {
		return Unlimited, nil
	}
	return v, nil
}

func (c *converter) retry(f string, in *gatewayv1.HTTPRouteRetry) *Retry {
	r := &Retry{Backoff: c.duration(f+".backoff", in.Backoff)}
	if r.Backoff == Unlimited {
		r.Backoff = 0 // "0s" backoff: retry at once
	}
	for _, code := range in.Codes {
		r.Codes = append(r.Codes, int(code))
	}
	if in.Attempts != nil {
		if *in.Attempts < 1 {
			c.add(fieldErr(f+".attempts", ReasonUnsupportedValue, "%d is less than 1", *in.Attempts))
		}
		r.Attempts = *in.Attempts
	}
	return r
}

// retryAnnotation applies AnnotationRetryNonIdempotent to the rules' retry
// stanzas.
func (c *converter) retryAnnotation(annotations map[string]string) {
	v, ok := annotations[AnnotationRetryNonIdempotent]
	if !ok {
		return
	}
	f := "metadata.annotations[" + AnnotationRetryNonIdempotent + "]"
	v = strings.TrimSpace(v)
	switch v {
	case "false":
		return
	case "true":
		for i := range c.route.Rules {
			if r := c.route.Rules[i].Retry; r != nil {
				r.NonIdempotent = true
			}
		}
		return
	}
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(c.route.Rules, func(r Rule) bool { return r.Name == name })
		switch {
		case i < 0:
			c.add(fieldErr(f, ReasonUnsupportedValue, "%q: want true, false or names of rules, and no rule is named %q", v, name))
		case c.route.Rules[i].Retry == nil:
			c.add(fieldErr(f, ReasonUnsupportedValue, "rule %q has no retry stanza to apply to", name))
		default:
			c.route.Rules[i].Retry.NonIdempotent = true
		}
	}
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
