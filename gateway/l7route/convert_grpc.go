package l7route

import (
	"fmt"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// FromGRPCRoute converts a GRPCRoute, as FromHTTPRoute does an HTTPRoute.
// GRPCRoute has no timeouts or retry fields: its rules get the gateway's
// default timeouts and the default retry policy.
func FromGRPCRoute(gr *gatewayv1.GRPCRoute) (*Route, error) {
	c := newConverter(KindGRPC, gr.Namespace, gr.Name)
	c.route.Created = gr.CreationTimestamp.Time
	c.parents(gr.Spec.ParentRefs)
	for i, rule := range gr.Spec.Rules {
		c.route.Rules = append(c.route.Rules, c.grpcRule(fmt.Sprintf("spec.rules[%d]", i), rule))
	}
	if _, ok := gr.Annotations[AnnotationRetryNonIdempotent]; ok {
		c.add(fieldErr("metadata.annotations["+AnnotationRetryNonIdempotent+"]", ReasonUnsupportedValue,
			"GRPCRoute has no retry stanza to apply to"))
	}
	return c.done()
}

func (c *converter) grpcRule(f string, in gatewayv1.GRPCRouteRule) Rule {
	rule := Rule{Name: string(deref(in.Name, ""))}
	for _, m := range in.Matches {
		rule.Matches = append(rule.Matches, grpcMatch(m))
	}
	rule.Filters = c.filters(f+".filters", grpcFilters(in.Filters))
	for j, b := range in.BackendRefs {
		bf := fmt.Sprintf("%s.backendRefs[%d]", f, j)
		rule.Backends = append(rule.Backends, c.backend(bf, b.BackendRef, grpcFilters(b.Filters)))
	}
	if in.SessionPersistence != nil {
		c.add(fieldErr(f+".sessionPersistence", ReasonUnsupportedValue, "not supported"))
	}
	return rule
}

func grpcMatch(in gatewayv1.GRPCRouteMatch) Match {
	var m Match
	if g := in.Method; g != nil {
		m.GRPC = &GRPCMatch{
			Type:    ValueType(deref(g.Type, gatewayv1.GRPCMethodMatchExact)),
			Service: deref(g.Service, ""),
			Method:  deref(g.Method, ""),
		}
	}
	for _, h := range in.Headers {
		m.Headers = append(m.Headers, ValueMatch{Type: ValueType(deref(h.Type, gatewayv1.GRPCHeaderMatchExact)), Name: string(h.Name), Value: h.Value})
	}
	return m
}

func grpcFilters(in []gatewayv1.GRPCRouteFilter) []filterIn {
	out := make([]filterIn, len(in))
	for i, x := range in {
		out[i] = filterIn{typ: string(x.Type), req: x.RequestHeaderModifier, resp: x.ResponseHeaderModifier}
	}
	return out
}
