package authz

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidatePolicy(t *testing.T) {
	ok := func() *AuthorizationPolicy {
		return policy("p", "cart", ActionAllow, from(src("north", "web", "frontend")).to([]string{"GET"}, "/api/*"))
	}
	require.NoError(t, ok().Validate(exported))
	require.NoError(t, ok().Validate(nil))

	for _, tc := range []struct {
		name   string
		edit   func(p *AuthorizationPolicy)
		field  string
		reason Reason
	}{
		{"bad namespace", func(p *AuthorizationPolicy) { p.Namespace = "Shop" }, "metadata.namespace", ReasonInvalid},
		{"no name", func(p *AuthorizationPolicy) { p.Name = "" }, "metadata.name", ReasonInvalid},
		{"no service", func(p *AuthorizationPolicy) { p.Spec.Service = "" }, "spec.service", ReasonInvalid},
		{"unknown service", func(p *AuthorizationPolicy) { p.Spec.Service = "typo" }, "spec.service", ReasonServiceNotFound},
		{"unknown port", func(p *AuthorizationPolicy) { p.Spec.Ports = []int32{8080, 7070} }, "spec.ports[1]", ReasonPortNotFound},
		{"bad port", func(p *AuthorizationPolicy) { p.Spec.Ports = []int32{0} }, "spec.ports[0]", ReasonInvalid},
		{"port twice", func(p *AuthorizationPolicy) { p.Spec.Ports = []int32{8080, 8080} }, "spec.ports[1]", ReasonInvalid},
		{"bad action", func(p *AuthorizationPolicy) { p.Spec.Action = "ALLOW" }, "spec.action", ReasonInvalid},
		{"no rules", func(p *AuthorizationPolicy) { p.Spec.Rules = nil }, "spec.rules", ReasonInvalid},
		{"too many rules", func(p *AuthorizationPolicy) { p.Spec.Rules = make([]Rule, maxRules+1) }, "spec.rules", ReasonInvalid},
		{"no from", func(p *AuthorizationPolicy) { p.Spec.Rules[0].From = nil }, "spec.rules[0].from", ReasonInvalid},
		{"empty source", func(p *AuthorizationPolicy) { p.Spec.Rules[0].From = []Source{{}} }, "spec.rules[0].from[0]", ReasonInvalid},
		{"star inside", func(p *AuthorizationPolicy) { p.Spec.Rules[0].From[0].Cluster = "no*th" }, "spec.rules[0].from[0].cluster", ReasonInvalid},
		{"two stars", func(p *AuthorizationPolicy) { p.Spec.Rules[0].From[0].Namespace = "*web*" }, "spec.rules[0].from[0].namespace", ReasonInvalid},
		{"uppercase", func(p *AuthorizationPolicy) { p.Spec.Rules[0].From[0].Namespace = "Web" }, "spec.rules[0].from[0].namespace", ReasonInvalid},
		{"bad prefix char", func(p *AuthorizationPolicy) { p.Spec.Rules[0].From[0].Cluster = "no_*" }, "spec.rules[0].from[0].cluster", ReasonInvalid},
		{"dot in namespace", func(p *AuthorizationPolicy) { p.Spec.Rules[0].From[0].Namespace = "a.*" }, "spec.rules[0].from[0].namespace", ReasonInvalid},
		{"spiffe id as sa", func(p *AuthorizationPolicy) {
			p.Spec.Rules[0].From[0].ServiceAccount = "spiffe://north.clusterset.local/ns/web/sa/x"
		}, "spec.rules[0].from[0].serviceAccount", ReasonInvalid},
		{"empty operation", func(p *AuthorizationPolicy) { p.Spec.Rules[0].To = []Operation{{}} }, "spec.rules[0].to[0]", ReasonInvalid},
		{"lowercase method", func(p *AuthorizationPolicy) { p.Spec.Rules[0].To[0].Methods = []string{"get"} }, "spec.rules[0].to[0].methods[0]", ReasonInvalid},
		{"bad method", func(p *AuthorizationPolicy) { p.Spec.Rules[0].To[0].Methods = []string{"GE T"} }, "spec.rules[0].to[0].methods[0]", ReasonInvalid},
		{"relative path", func(p *AuthorizationPolicy) { p.Spec.Rules[0].To[0].Paths = []string{"api"} }, "spec.rules[0].to[0].paths[0]", ReasonInvalid},
		{"query in path", func(p *AuthorizationPolicy) { p.Spec.Rules[0].To[0].Paths = []string{"/a?b"} }, "spec.rules[0].to[0].paths[0]", ReasonInvalid},
		{"star in path", func(p *AuthorizationPolicy) { p.Spec.Rules[0].To[0].Paths = []string{"/a/*/b"} }, "spec.rules[0].to[0].paths[0]", ReasonInvalid},
		{"space in path", func(p *AuthorizationPolicy) { p.Spec.Rules[0].To[0].Paths = []string{"/a b"} }, "spec.rules[0].to[0].paths[0]", ReasonInvalid},
		{"long path", func(p *AuthorizationPolicy) {
			p.Spec.Rules[0].To[0].Paths = []string{"/" + strings.Repeat("a", maxPathLen)}
		}, "spec.rules[0].to[0].paths[0]", ReasonInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok()
			tc.edit(p)
			err := p.Validate(exported)
			var pe *PolicyError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.field, pe.Fields[0].Field, "%v", err)
			require.Equal(t, tc.reason, pe.Fields[0].Reason)
			require.Equal(t, tc.reason == ReasonInvalid, pe.Invalid())
			require.Contains(t, err.Error(), "invalid AuthorizationPolicy ")
			require.Contains(t, err.Error(), ": "+tc.field+": ")
		})
	}
}

func TestValidatePatternsAccepted(t *testing.T) {
	p := policy("p", "cart", ActionDeny, from(
		src("*", "", ""), src("prod-*", "", ""), src("*-east", "team-*", "*"),
		src("", "web", "front.end"), src("", "", "*.batch"),
	).to([]string{"*", "PURGE"}, "*", "/exact", "/prefix/*", "*.html", "/pkg.Service/Method"))
	require.NoError(t, p.Validate(exported))
}

func TestValidateRateLimit(t *testing.T) {
	require.NoError(t, rateLimit("r", "cart", "", 10, 0).Validate(exported))
	for _, tc := range []struct {
		name  string
		edit  func(p *RateLimitPolicy)
		field string
	}{
		{"no requests", func(p *RateLimitPolicy) { p.Spec.Requests = 0 }, "spec.requests"},
		{"bad key", func(p *RateLimitPolicy) { p.Spec.Key = "Namespace" }, "spec.key"},
		{"negative burst", func(p *RateLimitPolicy) { p.Spec.Burst = -1 }, "spec.burst"},
		{"long period", func(p *RateLimitPolicy) { p.Spec.Period = metav1.Duration{Duration: 2 * maxPeriod} }, "spec.period"},
		{"tiny period", func(p *RateLimitPolicy) { p.Spec.Period = metav1.Duration{Duration: 1} }, "spec.period"},
		{"unknown service", func(p *RateLimitPolicy) { p.Spec.Service = "typo" }, "spec.service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := rateLimit("r", "cart", KeyPrincipal, 10, 0)
			tc.edit(p)
			var pe *PolicyError
			require.ErrorAs(t, p.Validate(exported), &pe)
			require.Equal(t, tc.field, pe.Fields[0].Field)
		})
	}
}

func TestConditions(t *testing.T) {
	cs := Conditions(nil)
	require.Equal(t, metav1.ConditionTrue, cs[0].Status)
	require.Equal(t, metav1.ConditionTrue, cs[1].Status)

	bad := policy("p", "typo", ActionAllow)
	cs = Conditions(bad.Validate(exported))
	require.Equal(t, ConditionAccepted, cs[0].Type)
	require.Equal(t, metav1.ConditionFalse, cs[0].Status)
	require.Equal(t, string(ReasonInvalid), cs[0].Reason)
	require.Contains(t, cs[0].Message, "spec.rules: at least one rule")
	require.Equal(t, metav1.ConditionFalse, cs[1].Status)
	require.Equal(t, string(ReasonServiceNotFound), cs[1].Reason)

	refOnly := policy("p", "typo", ActionAllow, from(src("*", "", "")))
	cs = Conditions(refOnly.Validate(exported))
	require.Equal(t, metav1.ConditionTrue, cs[0].Status, "a missing service does not stop enforcement")
	require.Equal(t, metav1.ConditionFalse, cs[1].Status)
	require.Contains(t, cs[1].Message, "enforced all the same")
}
