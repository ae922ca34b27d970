package l7route

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/causeway-mesh/causeway/internal/lib/names"
	"golang.org/x/net/http/httpguts"
)

// ServiceInfo is what validation needs to know of an imported service.
type ServiceInfo struct {
	// Ports are the service's port numbers.
	Ports []int32
	// Clusters are the clusters exporting the service.
	Clusters []string
}

// Lookup finds an imported service by key; ok is false if the clusterset
// has no such service.
type Lookup func(ServiceKey) (info ServiceInfo, ok bool)

// Validate checks the route and, if lookup is not nil, that the services,
// ports and clusters it names exist. It returns nil or a *RouteError
// listing every problem, each with the field it is about and the condition
// reason it maps to (see Conditions).
func (r *Route) Validate(lookup Lookup) error {
	v := validator{route: r, fields: slices.Clone(r.problems)}
	v.meta()
	v.parents(lookup)
	seen := map[string]string{}
	ruleNames := map[string]int{}
	for i := range r.Rules {
		v.rule(fmt.Sprintf("spec.rules[%d]", i), &r.Rules[i], seen, lookup)
		if n := r.Rules[i].Name; n != "" {
			if j, dup := ruleNames[n]; dup {
				v.add(fieldErr(fmt.Sprintf("spec.rules[%d].name", i), ReasonUnsupportedValue, "%q is also the name of spec.rules[%d]", n, j))
			}
			ruleNames[n] = i
		}
	}
	if len(v.fields) == 0 {
		return nil
	}
	return &RouteError{Route: r.Key(), Fields: v.fields}
}

type validator struct {
	route  *Route
	fields []*FieldError
}

func (v *validator) add(e *FieldError) { v.fields = append(v.fields, e) }

func (v *validator) meta() {
	r := v.route
	if r.Kind != KindHTTP && r.Kind != KindGRPC {
		v.add(unsupported("kind", string(r.Kind), KindHTTP, KindGRPC))
	}
	if !names.IsDNSLabel(r.Namespace) {
		v.add(fieldErr("metadata.namespace", ReasonUnsupportedValue, "%q is not a namespace name", r.Namespace))
	}
	if r.Name == "" {
		v.add(fieldErr("metadata.name", ReasonUnsupportedValue, "required"))
	}
}

func (v *validator) parents(lookup Lookup) {
	r := v.route
	if len(r.Parents) == 0 {
		v.add(fieldErr("spec.parentRefs", ReasonNoMatchingParent,
			"no parent is an imported service (group \"\" kind Service, or group multicluster.x-k8s.io kind ServiceImport)"))
	}
	seen := map[ParentRef]int{}
	for i, p := range r.Parents {
		f := fmt.Sprintf("spec.parentRefs[%d]", i)
		if j, dup := seen[p]; dup {
			v.add(fieldErr(f, ReasonUnsupportedValue, "same parent as spec.parentRefs[%d]", j))
			continue
		}
		seen[p] = i
		switch {
		case p.Service.Name == "":
			v.add(fieldErr(f+".name", ReasonUnsupportedValue, "required"))
		case p.Service.Namespace != r.Namespace:
			v.add(fieldErr(f+".namespace", ReasonUnsupportedValue,
				"%q: a route attaches only to services of its own namespace %q (consumer routes are not supported)", p.Service.Namespace, r.Namespace))
		case p.Port < 0 || p.Port > 65535:
			v.add(fieldErr(f+".port", ReasonUnsupportedValue, "%d is not a port number 1-65535", p.Port))
		case lookup != nil:
			info, ok := lookup(p.Service)
			if !ok {
				v.add(fieldErr(f, ReasonNoMatchingParent, "no imported service %s", p.Service))
			} else if p.Port != 0 && !slices.Contains(info.Ports, p.Port) {
				v.add(fieldErr(f+".port", ReasonNoMatchingParent, "imported service %s has no port %d", p.Service, p.Port))
			}
		}
	}
}

func (v *validator) rule(f string, rule *Rule, seen map[string]string, lookup Lookup) {
	for j, m := range rule.Matches {
		mf := fmt.Sprintf("%s.matches[%d]", f, j)
		v.match(mf, m)
		key := matchKey(m)
		if other, dup := seen[key]; dup {
			v.add(fieldErr(mf, ReasonUnsupportedValue, "same match as %s, so it can never be selected", other))
			continue
		}
		seen[key] = mf
	}
	if len(rule.Matches) == 0 {
		key := matchKey(Match{})
		if other, dup := seen[key]; dup {
			v.add(fieldErr(f+".matches", ReasonUnsupportedValue, "no matches (match every request), like %s, so it can never be selected", other))
		}
		seen[key] = f + ".matches"
	}
	v.filters(f+".filters", rule.Filters)
	v.backends(f, rule.Backends, lookup)
	v.timeouts(f+".timeouts", rule.Timeouts)
	if rule.Retry != nil {
		v.retry(f+".retry", rule.Retry)
	}
}

func (v *validator) match(f string, m Match) {
	var err *FieldError
	if v.route.Kind == KindGRPC {
		if m.GRPC != nil && m.GRPC.Service == "" && m.GRPC.Method == "" {
			v.add(fieldErr(f+".method", ReasonUnsupportedValue, "set service, method or both"))
		}
		_, _, err = compileGRPC(m)
	} else {
		v.path(f+".path", m.Path)
		if m.Method != "" && !httpguts.ValidHeaderFieldName(m.Method) {
			v.add(fieldErr(f+".method", ReasonUnsupportedValue, "%q is not an HTTP method", m.Method))
		}
		_, _, err = compileHTTP(m)
	}
	if err != nil {
		v.add(err.under(f))
	}
	v.values(f+".headers", m.Headers, true)
	v.values(f+".queryParams", m.QueryParams, false)
}

func (v *validator) path(f string, p PathMatch) {
	if p.Type != PathExact && p.Type != PathPrefix {
		return
	}
	switch {
	case !strings.HasPrefix(p.Value, "/"):
		v.add(fieldErr(f+".value", ReasonUnsupportedValue, "%q must begin with '/'", p.Value))
	case strings.Contains(p.Value, "//"):
		v.add(fieldErr(f+".value", ReasonUnsupportedValue, "%q must not contain '//'", p.Value))
	case strings.ContainsAny(p.Value, "?#"):
		v.add(fieldErr(f+".value", ReasonUnsupportedValue, "%q must not contain '?' or '#' (match query parameters with queryParams)", p.Value))
	}
}

func (v *validator) values(f string, ms []ValueMatch, header bool) {
	seen := map[string]int{}
	for i, m := range ms {
		name := m.Name
		if header {
			name = http.CanonicalHeaderKey(name)
		}
		ff := fmt.Sprintf("%s[%d].name", f, i)
		if !httpguts.ValidHeaderFieldName(m.Name) {
			v.add(fieldErr(ff, ReasonUnsupportedValue, "%q is not a valid name", m.Name))
		} else if j, dup := seen[name]; dup {
			v.add(fieldErr(ff, ReasonUnsupportedValue, "%q is also matched by %s[%d]", m.Name, f, j))
		}
		seen[name] = i
	}
}

// matchKey is a canonical form of m: two matches with the same key match
// the same requests.
func matchKey(m Match) string {
	var b strings.Builder
	pt := m.Path.Type
	pv := m.Path.Value
	if pt == "" || pt == PathPrefix {
		pt, pv = PathPrefix, strings.TrimSuffix(pv, "/")
	}
	fmt.Fprintf(&b, "%s %q %q", pt, pv, m.Method)
	if g := m.GRPC; g != nil {
		fmt.Fprintf(&b, " grpc %s %q %q", orDefault(g.Type, ValueExact), g.Service, g.Method)
	}
	hs := make([]string, len(m.Headers))
	for i, h := range m.Headers {
		hs[i] = fmt.Sprintf("%s %q %q", orDefault(h.Type, ValueExact), http.CanonicalHeaderKey(h.Name), h.Value)
	}
	slices.Sort(hs)
	qs := make([]string, len(m.QueryParams))
	for i, q := range m.QueryParams {
		qs[i] = fmt.Sprintf("%s %q %q", orDefault(q.Type, ValueExact), q.Name, q.Value)
	}
	slices.Sort(qs)
	fmt.Fprintf(&b, " h%q q%q", hs, qs)
	return b.String()
}

func orDefault[T ~string](v, def T) T {
	if v == "" {
		return def
	}
	return v
}
