package l7route

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/causeway-mesh/causeway/internal/lib/names"
	"golang.org/x/net/http/httpguts"
)

func (v *validator) filters(f string, fs Filters) {
	v.headerModifier(f+".requestHeaderModifier", fs.RequestHeaders)
	v.headerModifier(f+".responseHeaderModifier", fs.ResponseHeaders)
}

func (v *validator) headerModifier(f string, m *HeaderModifier) {
	if m == nil {
		return
	}
	if len(m.Set)+len(m.Add)+len(m.Remove) == 0 {
		v.add(fieldErr(f, ReasonUnsupportedValue, "set, add or remove at least one header"))
	}
	named := func(list string, i int, name string, seen map[string]string) {
		ff := fmt.Sprintf("%s.%s[%d]", f, list, i)
		if !httpguts.ValidHeaderFieldName(name) {
			v.add(fieldErr(ff+".name", ReasonUnsupportedValue, "%q is not a valid header name", name))
			return
		}
		key := http.CanonicalHeaderKey(name)
		if other, dup := seen[key]; dup {
			v.add(fieldErr(ff+".name", ReasonUnsupportedValue, "header %q is also in %s", name, other))
			return
		}
		seen[key] = ff
	}
	setAdd := map[string]string{}
	for i, h := range m.Set {
		named("set", i, h.Name, setAdd)
		if !httpguts.ValidHeaderFieldValue(h.Value) {
			v.add(fieldErr(fmt.Sprintf("%s.set[%d].value", f, i), ReasonUnsupportedValue, "not a valid header value"))
		}
	}
	for i, h := range m.Add {
		named("add", i, h.Name, setAdd)
		if !httpguts.ValidHeaderFieldValue(h.Value) {
			v.add(fieldErr(fmt.Sprintf("%s.add[%d].value", f, i), ReasonUnsupportedValue, "not a valid header value"))
		}
	}
	removed := map[string]string{}
	for i, name := range m.Remove {
		named("remove", i, name, removed)
	}
}

func (v *validator) backends(f string, bs []Backend, lookup Lookup) {
	if len(bs) == 0 {
		v.add(fieldErr(f+".backendRefs", ReasonUnsupportedValue,
			"no backendRefs: every request would get 500 (to send to the service itself, list it)"))
		return
	}
	total := int64(0)
	for i, b := range bs {
		bf := fmt.Sprintf("%s.backendRefs[%d]", f, i)
		if b.Weight < 0 || b.Weight > MaxWeight {
			v.add(fieldErr(bf+".weight", ReasonUnsupportedValue, "%d is out of range 0-%d", b.Weight, MaxWeight))
		} else {
			total += int64(b.Weight)
		}
		v.filters(bf+".filters", b.Filters)
		v.backendRef(bf, b, lookup)
	}
	if total == 0 {
		v.add(fieldErr(f+".backendRefs", ReasonUnsupportedValue,
			"every weight is zero: every request would get 500 (give at least one backend a weight)"))
	}
}

func (v *validator) backendRef(f string, b Backend, lookup Lookup) {
	r := v.route
	if b.Port < 0 || b.Port > 65535 {
		v.add(fieldErr(f+".port", ReasonUnsupportedValue, "%d is not a port number 1-65535", b.Port))
		return
	}
	if b.Cluster != "" {
		v.clusterRef(f, b, lookup)
		return
	}
	switch {
	case b.Service.Name == "":
		v.add(fieldErr(f+".name", ReasonUnsupportedValue, "required"))
	case b.Service.Namespace != r.Namespace:
		v.add(fieldErr(f+".namespace", ReasonRefNotPermitted,
			"%q: backends must be in the route's namespace %q (ReferenceGrant is not supported)", b.Service.Namespace, r.Namespace))
	case b.Port == 0:
		v.add(fieldErr(f+".port", ReasonUnsupportedValue, "required for a Service or ServiceImport backend"))
	case lookup != nil:
		info, ok := lookup(b.Service)
		if !ok {
			v.add(fieldErr(f, ReasonBackendNotFound, "no imported service %s", b.Service))
		} else if !slices.Contains(info.Ports, b.Port) {
			v.add(fieldErr(f+".port", ReasonBackendNotFound, "imported service %s has no port %d", b.Service, b.Port))
		}
	}
}

// clusterRef checks a Cluster backend: the cluster must export every parent
// service (the backend's service is the one the request was addressed to).
func (v *validator) clusterRef(f string, b Backend, lookup Lookup) {
	if !names.IsDNSLabel(b.Cluster) {
		v.add(fieldErr(f+".name", ReasonUnsupportedValue, "%q is not a cluster name", b.Cluster))
		return
	}
	if b.Service != (ServiceKey{}) {
		v.add(fieldErr(f+".namespace", ReasonUnsupportedValue, "a Cluster backend names no service: it is the service the request was addressed to"))
		return
	}
	if lookup == nil {
		return
	}
	for _, p := range v.route.Parents {
		info, ok := lookup(p.Service)
		if !ok {
			continue // reported with the parent
		}
		if !slices.Contains(info.Clusters, b.Cluster) {
			v.add(fieldErr(f, ReasonBackendNotFound, "cluster %q does not export %s", b.Cluster, p.Service))
		} else if b.Port != 0 && !slices.Contains(info.Ports, b.Port) {
			v.add(fieldErr(f+".port", ReasonBackendNotFound, "imported service %s has no port %d", p.Service, b.Port))
		}
	}
}

func (v *validator) timeouts(f string, t Timeouts) {
	if t.Request < 0 {
		v.add(fieldErr(f+".request", ReasonUnsupportedValue, "%s is negative", t.Request))
	}
	if t.BackendRequest < 0 {
		v.add(fieldErr(f+".backendRequest", ReasonUnsupportedValue, "%s is negative", t.BackendRequest))
	}
	if t.Request > 0 && t.Request != Unlimited && t.BackendRequest > t.Request {
		v.add(fieldErr(f+".backendRequest", ReasonUnsupportedValue, "%s is longer than the request timeout %s",
			fmtTimeout(t.BackendRequest), t.Request))
	}
}

func fmtTimeout(d time.Duration) string {
	if d == Unlimited {
		return "0s (no timeout)"
	}
	return d.String()
}

func (v *validator) retry(f string, r *Retry) {
	seen := map[int]int{}
	for i, c := range r.Codes {
		cf := fmt.Sprintf("%s.codes[%d]", f, i)
		if c < 400 || c > 599 {
			v.add(fieldErr(cf, ReasonUnsupportedValue, "%d is not a status code 400-599", c))
		} else if j, dup := seen[c]; dup {
			v.add(fieldErr(cf, ReasonUnsupportedValue, "%d is also codes[%d]", c, j))
		}
		seen[c] = i
	}
	if r.Attempts < 0 {
		v.add(fieldErr(f+".attempts", ReasonUnsupportedValue, "%d is negative", r.Attempts))
	} else if r.Attempts > MaxAttempts {
		v.add(fieldErr(f+".attempts", ReasonUnsupportedValue, "%d is more than %d", r.Attempts, MaxAttempts))
	}
	if r.Backoff < 0 {
		v.add(fieldErr(f+".backoff", ReasonUnsupportedValue, "%s is negative", r.Backoff))
	}
}
