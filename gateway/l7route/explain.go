package l7route

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RuleView describes one match of a rule as Select tries it, for
// `causeway explain`.
type RuleView struct {
	// Route is "HTTPRoute ns/name"; Rule the rule's name or "#index".
	Route string `json:"route"`
	Rule  string `json:"rule"`
	// Match is the match in words ("any request" when the rule has none).
	Match string `json:"match"`
	// Backends are the weighted targets.
	Backends []BackendView `json:"backends"`
	// Timeouts and Retry are the rule's, in words ("-" when unset).
	Timeouts string `json:"timeouts"`
	Retry    string `json:"retry"`
}

// BackendView is one weighted target of a RuleView.
type BackendView struct {
	// Target is "ns/name:port", with " in <cluster>" when pinned.
	Target string `json:"target"`
	Weight int32  `json:"weight"`
}

// Explain lists the matches attached to port of svc in the order Select
// tries them (gRPC routes first, as for gRPC calls); nil when no route is
// attached.
func (s *Snapshot) Explain(svc ServiceKey, port int32) []RuleView {
	sr := s.services[svc]
	if sr == nil {
		return nil
	}
	var out []RuleView
	for _, list := range [][]*entry{sr.grpc, sr.http} {
		for _, e := range list {
			if e.port != 0 && e.port != port {
				continue
			}
			out = append(out, viewOf(e, svc, port))
		}
	}
	return out
}

func viewOf(e *entry, svc ServiceKey, port int32) RuleView {
	rule := &e.route.Rules[e.rule]
	v := RuleView{Route: e.route.Key().String(), Rule: rule.Name, Match: "any request",
		Timeouts: timeoutsText(rule.Timeouts), Retry: retryText(rule.Retry)}
	if v.Rule == "" {
		v.Rule = "#" + strconv.Itoa(e.rule)
	}
	if len(rule.Matches) > 0 {
		v.Match = matchText(rule.Matches[e.match])
	}
	for _, b := range rule.Backends {
		target := b.Service
		if target == (ServiceKey{}) {
			target = svc
		}
		p := b.Port
		if p == 0 {
			p = port
		}
		t := fmt.Sprintf("%s:%d", target, p)
		if b.Cluster != "" {
			t += " in " + b.Cluster
		}
		v.Backends = append(v.Backends, BackendView{Target: t, Weight: b.Weight})
	}
	return v
}

func matchText(m Match) string {
	var parts []string
	if m.GRPC != nil {
		parts = append(parts, fmt.Sprintf("grpc %s/%s", starIfEmpty(m.GRPC.Service), starIfEmpty(m.GRPC.Method)))
	}
	switch m.Path.Type {
	case PathExact:
		parts = append(parts, "path = "+m.Path.Value)
	case PathPrefix:
		parts = append(parts, "path prefix "+m.Path.Value)
	case PathRegularExpression:
		parts = append(parts, "path ~ "+m.Path.Value)
	}
	if m.Method != "" {
		parts = append(parts, "method "+m.Method)
	}
	for _, h := range m.Headers {
		parts = append(parts, fmt.Sprintf("header %s%s%s", h.Name, valueOp(h.Type), h.Value))
	}
	for _, q := range m.QueryParams {
		parts = append(parts, fmt.Sprintf("query %s%s%s", q.Name, valueOp(q.Type), q.Value))
	}
	if len(parts) == 0 {
		return "any request"
	}
	return strings.Join(parts, ", ")
}

func valueOp(t ValueType) string {
	if t == ValueRegularExpression {
		return "~"
	}
	return "="
}

func starIfEmpty(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

func timeoutsText(t Timeouts) string {
	var parts []string
	add := func(name string, d time.Duration) {
		switch d {
		case 0:
		case Unlimited:
			parts = append(parts, name+" none")
		default:
			parts = append(parts, name+" "+d.String())
		}
	}
	add("request", t.Request)
	add("backendRequest", t.BackendRequest)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func retryText(r *Retry) string {
	if r == nil {
		return "-"
	}
	p := EffectiveRetry(r)
	s := fmt.Sprintf("%d attempts on %v, backoff %s", p.Attempts, p.Codes, p.Backoff)
	if p.NonIdempotent {
		s += ", any method"
	}
	return s
}
