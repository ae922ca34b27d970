package l7route

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// validRoute is a route with one of everything, valid against catalog.
func validRoute() *Route {
	return &Route{Kind: KindHTTP, Namespace: "shop", Name: "cart", Parents: []ParentRef{{Service: cart, Port: 8080}},
		Rules: []Rule{
			{
				Name: "canary",
				Matches: []Match{{Path: PathMatch{Type: PathPrefix, Value: "/api"}, Method: "GET",
					Headers: []ValueMatch{{Name: "x-canary", Value: "1"}}, QueryParams: []ValueMatch{{Name: "q", Value: "1"}}}},
				Filters:  Filters{RequestHeaders: &HeaderModifier{Set: []Header{{"x-a", "1"}}, Remove: []string{"x-b"}}},
				Backends: []Backend{{Service: cart, Port: 8080, Weight: 90}, {Service: cartCanary, Port: 8080, Weight: 10}},
				Timeouts: Timeouts{Request: time.Second, BackendRequest: 300 * time.Millisecond},
				Retry:    &Retry{Codes: []int{503}, Attempts: 2, Backoff: 10 * time.Millisecond},
			},
			{Name: "clusters", Backends: []Backend{{Cluster: "east", Weight: 95}, {Cluster: "west", Weight: 5}}},
		}}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(r *Route)
		field  string
		reason Reason
	}{
		{"unknown backend", func(r *Route) { r.Rules[0].Backends[1].Service.Name = "nope" }, "spec.rules[0].backendRefs[1]", ReasonBackendNotFound},
		{"unknown backend port", func(r *Route) { r.Rules[0].Backends[1].Port = 9 }, "spec.rules[0].backendRefs[1].port", ReasonBackendNotFound},
		{"backend in another namespace", func(r *Route) { r.Rules[0].Backends[1].Service.Namespace = "x" }, "spec.rules[0].backendRefs[1].namespace", ReasonRefNotPermitted},
		{"backend without port", func(r *Route) { r.Rules[0].Backends[1].Port = 0 }, "spec.rules[0].backendRefs[1].port", ReasonUnsupportedValue},
		{"unknown cluster", func(r *Route) { r.Rules[1].Backends[1].Cluster = "south" }, "spec.rules[1].backendRefs[1]", ReasonBackendNotFound},
		{"bad cluster name", func(r *Route) { r.Rules[1].Backends[1].Cluster = "West!" }, "spec.rules[1].backendRefs[1].name", ReasonUnsupportedValue},
		{"all weights zero", func(r *Route) { r.Rules[1].Backends[0].Weight, r.Rules[1].Backends[1].Weight = 0, 0 }, "spec.rules[1].backendRefs", ReasonUnsupportedValue},
		{"weight out of range", func(r *Route) { r.Rules[0].Backends[0].Weight = MaxWeight + 1 }, "spec.rules[0].backendRefs[0].weight", ReasonUnsupportedValue},
		{"negative weight", func(r *Route) { r.Rules[0].Backends[0].Weight = -1 }, "spec.rules[0].backendRefs[0].weight", ReasonUnsupportedValue},
		{"no backends", func(r *Route) { r.Rules[1].Backends = nil }, "spec.rules[1].backendRefs", ReasonUnsupportedValue},
		{"bad path regex", func(r *Route) { r.Rules[0].Matches[0].Path = PathMatch{Type: PathRegularExpression, Value: "/(a"} }, "spec.rules[0].matches[0].path.value", ReasonUnsupportedValue},
		{"bad header regex", func(r *Route) {
			r.Rules[0].Matches[0].Headers[0].Type = ValueRegularExpression
			r.Rules[0].Matches[0].Headers[0].Value = "["
		}, "spec.rules[0].matches[0].headers[0].value", ReasonUnsupportedValue},
		{"unknown path type", func(r *Route) { r.Rules[0].Matches[0].Path.Type = "Glob" }, "spec.rules[0].matches[0].path.type", ReasonUnsupportedValue},
		{"relative path", func(r *Route) { r.Rules[0].Matches[0].Path.Value = "api" }, "spec.rules[0].matches[0].path.value", ReasonUnsupportedValue},
		{"double slash", func(r *Route) { r.Rules[0].Matches[0].Path.Value = "/a//b" }, "spec.rules[0].matches[0].path.value", ReasonUnsupportedValue},
		{"header matched twice", func(r *Route) {
			r.Rules[0].Matches[0].Headers = append(r.Rules[0].Matches[0].Headers, ValueMatch{Name: "X-Canary", Value: "2"})
		}, "spec.rules[0].matches[0].headers[1].name", ReasonUnsupportedValue},
		{"bad header name", func(r *Route) { r.Rules[0].Matches[0].Headers[0].Name = "x canary" }, "spec.rules[0].matches[0].headers[0].name", ReasonUnsupportedValue},
		{"duplicate match across rules", func(r *Route) { r.Rules[1].Matches = []Match{r.Rules[0].Matches[0]} }, "spec.rules[1].matches[0]", ReasonUnsupportedValue},
		{"two match-all rules", func(r *Route) {
			r.Rules = append(r.Rules, Rule{Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}})
		}, "spec.rules[2].matches", ReasonUnsupportedValue},
		{"prefix with and without trailing slash", func(r *Route) {
			r.Rules[1].Matches = []Match{r.Rules[0].Matches[0]}
			r.Rules[1].Matches[0].Path.Value = "/api/"
		}, "spec.rules[1].matches[0]", ReasonUnsupportedValue},
		{"backendRequest over request", func(r *Route) { r.Rules[0].Timeouts.BackendRequest = 2 * time.Second }, "spec.rules[0].timeouts.backendRequest", ReasonUnsupportedValue},
		{"negative timeout", func(r *Route) { r.Rules[0].Timeouts.Request = -time.Second }, "spec.rules[0].timeouts.request", ReasonUnsupportedValue},
		{"retry code out of range", func(r *Route) { r.Rules[0].Retry.Codes = []int{200} }, "spec.rules[0].retry.codes[0]", ReasonUnsupportedValue},
		{"retry code twice", func(r *Route) { r.Rules[0].Retry.Codes = []int{503, 503} }, "spec.rules[0].retry.codes[1]", ReasonUnsupportedValue},
		{"too many attempts", func(r *Route) { r.Rules[0].Retry.Attempts = MaxAttempts + 1 }, "spec.rules[0].retry.attempts", ReasonUnsupportedValue},
		{"duplicate rule name", func(r *Route) { r.Rules[1].Name = "canary" }, "spec.rules[1].name", ReasonUnsupportedValue},
		{"set header twice", func(r *Route) {
			r.Rules[0].Filters.RequestHeaders.Set = append(r.Rules[0].Filters.RequestHeaders.Set, Header{"X-A", "2"})
		}, "spec.rules[0].filters.requestHeaderModifier.set[1].name", ReasonUnsupportedValue},
		{"empty header modifier", func(r *Route) { r.Rules[0].Filters.ResponseHeaders = &HeaderModifier{} }, "spec.rules[0].filters.responseHeaderModifier", ReasonUnsupportedValue},
		{"no parent", func(r *Route) { r.Parents = nil }, "spec.parentRefs", ReasonNoMatchingParent},
		{"unknown parent", func(r *Route) { r.Parents[0].Service.Name = "nope" }, "spec.parentRefs[0]", ReasonNoMatchingParent},
		{"unknown parent port", func(r *Route) { r.Parents[0].Port = 9999 }, "spec.parentRefs[0].port", ReasonNoMatchingParent},
		{"parent in another namespace", func(r *Route) { r.Parents[0].Service.Namespace = "web" }, "spec.parentRefs[0].namespace", ReasonUnsupportedValue},
		{"parent twice", func(r *Route) { r.Parents = append(r.Parents, r.Parents[0]) }, "spec.parentRefs[1]", ReasonUnsupportedValue},
		{"bad kind", func(r *Route) { r.Kind = "TCPRoute" }, "kind", ReasonUnsupportedValue},
	}
	require.NoError(t, validRoute().Validate(catalog))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRoute()
			tt.edit(r)
			err := r.Validate(catalog)
			var re *RouteError
			require.ErrorAs(t, err, &re)
			require.Equal(t, r.Key(), re.Route)
			require.Len(t, re.Fields, 1, "%v", err)
			require.Equal(t, tt.field, re.Fields[0].Field, "%v", err)
			require.Equal(t, tt.reason, re.Fields[0].Reason, "%v", err)
			require.Contains(t, err.Error(), tt.field+": ")
		})
	}
}

func TestValidateWithoutLookup(t *testing.T) {
	r := validRoute()
	r.Rules[0].Backends[1].Service.Name = "nope"
	require.NoError(t, r.Validate(nil), "references are checked only with a lookup")
}

func TestValidateBadRegexIsErrBadRegex(t *testing.T) {
	r := validRoute()
	r.Rules[0].Matches[0].Path = PathMatch{Type: PathRegularExpression, Value: "(("}
	require.ErrorIs(t, r.Validate(nil), ErrBadRegex)
}

func TestValidateGRPC(t *testing.T) {
	r := &Route{Kind: KindGRPC, Namespace: "shop", Name: "g", Parents: []ParentRef{{Service: cart}},
		Rules: []Rule{{Matches: []Match{{GRPC: &GRPCMatch{}}}, Backends: []Backend{{Service: cart, Port: 8080, Weight: 1}}}}}
	var re *RouteError
	require.ErrorAs(t, r.Validate(nil), &re)
	require.Equal(t, "spec.rules[0].matches[0].method", re.Fields[0].Field)

	r.Rules[0].Matches[0].GRPC = &GRPCMatch{Type: ValueRegularExpression, Service: "(("}
	require.ErrorAs(t, r.Validate(nil), &re)
	require.Equal(t, "spec.rules[0].matches[0].method.service", re.Fields[0].Field)
}

func TestConditions(t *testing.T) {
	cond := func(cs []metav1.Condition, typ string) metav1.Condition {
		for _, c := range cs {
			if c.Type == typ {
				return c
			}
		}
		t.Fatalf("no %s condition in %v", typ, cs)
		return metav1.Condition{}
	}
	cs := Conditions(nil)
	require.Equal(t, metav1.ConditionTrue, cond(cs, "Accepted").Status)
	require.Equal(t, "ResolvedRefs", cond(cs, "ResolvedRefs").Reason)

	r := validRoute()
	r.Rules[0].Backends[1].Service.Name = "nope"
	cs = Conditions(r.Validate(catalog))
	require.Equal(t, metav1.ConditionFalse, cond(cs, "ResolvedRefs").Status)
	require.Equal(t, "BackendNotFound", cond(cs, "ResolvedRefs").Reason)
	require.Equal(t, metav1.ConditionFalse, cond(cs, "Accepted").Status, "Causeway does not program a route whose refs do not resolve")
	require.Equal(t, "BackendNotFound", cond(cs, "Accepted").Reason)
	require.Contains(t, cond(cs, "Accepted").Message, "spec.rules[0].backendRefs[1]: no imported service shop/nope")

	r.Rules[1].Backends[0].Weight = -5
	cs = Conditions(r.Validate(catalog))
	require.Equal(t, "UnsupportedValue", cond(cs, "Accepted").Reason, "a value error is the Accepted reason")
	require.Equal(t, "BackendNotFound", cond(cs, "ResolvedRefs").Reason)

	cs = Conditions(errors.New("boom"))
	require.Equal(t, metav1.ConditionFalse, cond(cs, "Accepted").Status)
}
