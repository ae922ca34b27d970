package authz

import (
	"cmp"
	"slices"
)

// compile turns a valid policy into its matcher.
func compile(p *AuthorizationPolicy) *compiledPolicy {
	cp := &compiledPolicy{name: p.Key().String(), deny: p.Spec.Action == ActionDeny}
	for _, r := range p.Spec.Rules {
		cr := compiledRule{}
		for _, s := range r.From {
			cr.from = append(cr.from, compiledSource{
				cluster:        compilePattern(s.Cluster),
				namespace:      compilePattern(s.Namespace),
				serviceAccount: compilePattern(s.ServiceAccount),
				workload:       s.Namespace != "" || s.ServiceAccount != "",
			})
		}
		for _, o := range r.To {
			co := compiledOp{}
			if len(o.Methods) > 0 && !slices.Contains(o.Methods, "*") {
				co.methods = slices.Clone(o.Methods)
			}
			for _, path := range o.Paths {
				co.paths = append(co.paths, compilePattern(path))
			}
			if slices.ContainsFunc(co.paths, func(p pattern) bool { return p.kind == matchAny }) {
				co.paths = nil
			}
			cr.to = append(cr.to, co)
		}
		cp.rules = append(cp.rules, cr)
	}
	return cp
}

// compileServices groups valid policies by service and merges them per
// port: a port any policy names gets its own list (its policies plus the
// service-wide ones), every other port uses the service-wide list.
func compileServices(policies []*AuthorizationPolicy) map[ServiceKey]*servicePolicies {
	sorted := slices.Clone(policies)
	slices.SortFunc(sorted, func(a, b *AuthorizationPolicy) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	out := map[ServiceKey]*servicePolicies{}
	for _, p := range sorted {
		key := ServiceKey{Namespace: p.Namespace, Name: p.Spec.Service}
		sp := out[key]
		if sp == nil {
			sp = &servicePolicies{byPort: map[int32]*portPolicies{}}
			out[key] = sp
		}
		for _, port := range p.Spec.Ports {
			if sp.byPort[port] == nil {
				sp.byPort[port] = &portPolicies{}
			}
		}
	}
	// Second pass, in name order, so every list stays sorted.
	for _, p := range sorted {
		sp := out[ServiceKey{Namespace: p.Namespace, Name: p.Spec.Service}]
		cp := compile(p)
		if len(p.Spec.Ports) == 0 {
			sp.anyPort.add(cp)
			for _, pp := range sp.byPort {
				pp.add(cp)
			}
			continue
		}
		for _, port := range p.Spec.Ports {
			sp.byPort[port].add(cp)
		}
	}
	return out
}

func (pp *portPolicies) add(cp *compiledPolicy) {
	if cp.deny {
		pp.deny = append(pp.deny, cp)
	} else {
		pp.allow = append(pp.allow, cp)
	}
}
