package authz

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/causeway-mesh/causeway/internal/lib/names"
	"golang.org/x/net/http/httpguts"
)

// Bounds on policy sizes; the CRD schemas carry the same maxItems and
// maxLength.
const (
	maxPorts   = 64
	maxRules   = 256
	maxSources = 256
	maxOps     = 64
	maxMethods = 16
	maxPaths   = 64
	maxPathLen = 1024
)

// Lookup finds an exported service of the local cluster and its port
// numbers; ok is false if the cluster exports no such service.
type Lookup func(ServiceKey) (ports []int32, ok bool)

// Validate checks the policy and, if lookup is not nil, that the service
// and ports it selects exist. It returns nil or a *PolicyError listing
// every problem, each with its field and condition reason. Problems with
// references only (PolicyError.Invalid is false) do not stop the policy
// from being enforced.
func (p *AuthorizationPolicy) Validate(lookup Lookup) error {
	v := validator{}
	v.meta(p.Namespace, p.Name)
	v.target(ServiceKey{Namespace: p.Namespace, Name: p.Spec.Service}, p.Spec.Ports, lookup)
	switch p.Spec.Action {
	case "", ActionAllow, ActionDeny:
	default:
		v.add(fieldErr("spec.action", "unsupported value %q, want Allow or Deny", p.Spec.Action))
	}
	switch n := len(p.Spec.Rules); {
	case n == 0:
		v.add(fieldErr("spec.rules", "at least one rule is required (to refuse every caller, use action Deny with from cluster \"*\")"))
	case n > maxRules:
		v.add(fieldErr("spec.rules", "%d rules, at most %d", n, maxRules))
	}
	for i, r := range p.Spec.Rules {
		v.rule(fmt.Sprintf("spec.rules[%d]", i), r)
	}
	return v.result(KindAuthorizationPolicy, p.Key())
}

type validator struct{ fields []*FieldError }

func (v *validator) add(e *FieldError) { v.fields = append(v.fields, e) }

func (v *validator) result(kind string, key PolicyKey) error {
	if len(v.fields) == 0 {
		return nil
	}
	return &PolicyError{Kind: kind, Policy: key, Fields: v.fields}
}

func (v *validator) meta(ns, name string) {
	if !names.IsDNSLabel(ns) {
		v.add(fieldErr("metadata.namespace", "%q is not a namespace name", ns))
	}
	if !isDNSSubdomain(name) {
		v.add(fieldErr("metadata.name", "%q is not an RFC 1123 subdomain", name))
	}
}

// target checks the selected service and ports.
func (v *validator) target(svc ServiceKey, ports []int32, lookup Lookup) {
	if !names.IsDNSLabel(svc.Name) {
		v.add(fieldErr("spec.service", "%q is not a service name (RFC 1123 label)", svc.Name))
		return
	}
	if len(ports) > maxPorts {
		v.add(fieldErr("spec.ports", "%d ports, at most %d", len(ports), maxPorts))
	}
	bad := false
	for i, port := range ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		if port < 1 || port > 65535 {
			v.add(fieldErr(f, "%d is not a port number 1-65535", port))
			bad = true
		} else if j := slices.Index(ports, port); j < i {
			v.add(fieldErr(f, "%d is also spec.ports[%d]", port, j))
		}
	}
	if lookup == nil || bad || !names.IsDNSLabel(svc.Namespace) {
		return
	}
	have, ok := lookup(svc)
	if !ok {
		v.add(refErr("spec.service", ReasonServiceNotFound, "this cluster exports no service %s", svc))
		return
	}
	for i, port := range ports {
		if !slices.Contains(have, port) {
			v.add(refErr(fmt.Sprintf("spec.ports[%d]", i), ReasonPortNotFound, "exported service %s has no port %d", svc, port))
		}
	}
}

func (v *validator) rule(f string, r Rule) {
	switch n := len(r.From); {
	case n == 0:
		v.add(fieldErr(f+".from", "at least one source is required (cluster: \"*\" for every caller)"))
	case n > maxSources:
		v.add(fieldErr(f+".from", "%d sources, at most %d", n, maxSources))
	}
	for i, s := range r.From {
		v.source(fmt.Sprintf("%s.from[%d]", f, i), s)
	}
	if len(r.To) > maxOps {
		v.add(fieldErr(f+".to", "%d operations, at most %d", len(r.To), maxOps))
	}
	for i, o := range r.To {
		v.operation(fmt.Sprintf("%s.to[%d]", f, i), o)
	}
}

func (v *validator) source(f string, s Source) {
	if s == (Source{}) {
		v.add(fieldErr(f, "set cluster, namespace or serviceAccount (cluster: \"*\" for every caller)"))
		return
	}
	check := func(field, val, what string, isName func(string) bool, chars func(byte) bool) {
		if val == "" {
			return
		}
		if err := checkPattern(val, what, isName, chars); err != nil {
			v.add(&FieldError{Field: f + "." + field, Reason: ReasonInvalid, Detail: err.Error(), Err: ErrInvalidPrincipal})
		}
	}
	check("cluster", s.Cluster, "a cluster name (RFC 1123 label)", names.IsDNSLabel, isLabelChar)
	check("namespace", s.Namespace, "a namespace name (RFC 1123 label)", names.IsDNSLabel, isLabelChar)
	check("serviceAccount", s.ServiceAccount, "a ServiceAccount name (RFC 1123 subdomain)", isDNSSubdomain, isSubdomainChar)
}

func (v *validator) operation(f string, o Operation) {
	if len(o.Methods) == 0 && len(o.Paths) == 0 {
		v.add(fieldErr(f, "set methods, paths or both"))
	}
	if len(o.Methods) > maxMethods {
		v.add(fieldErr(f+".methods", "%d methods, at most %d", len(o.Methods), maxMethods))
	}
	for i, m := range o.Methods {
		mf := fmt.Sprintf("%s.methods[%d]", f, i)
		switch up := strings.ToUpper(m); {
		case !httpguts.ValidHeaderFieldName(m):
			v.add(fieldErr(mf, "%q is not an HTTP method", m))
		case up != m && isStandardMethod(up):
			v.add(fieldErr(mf, "%q: methods are case-sensitive, did you mean %s?", m, up))
		}
	}
	if len(o.Paths) > maxPaths {
		v.add(fieldErr(f+".paths", "%d paths, at most %d", len(o.Paths), maxPaths))
	}
	for i, p := range o.Paths {
		if err := checkPath(p); err != nil {
			v.add(fieldErr(fmt.Sprintf("%s.paths[%d]", f, i), "%s", err.Error()))
		}
	}
}

func isStandardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}
