package authz

import (
	"time"
)

// maxPeriod bounds RateLimitPolicySpec.Period.
const maxPeriod = time.Hour

// Validate checks the policy and, if lookup is not nil, that the service
// and ports it selects exist (see AuthorizationPolicy.Validate).
func (p *RateLimitPolicy) Validate(lookup Lookup) error {
	v := validator{}
	v.meta(p.Namespace, p.Name)
	v.target(ServiceKey{Namespace: p.Namespace, Name: p.Spec.Service}, p.Spec.Ports, lookup)
	s := p.Spec
	switch s.Key {
	case "", KeyPrincipal, KeyCluster:
	default:
		v.add(fieldErr("spec.key", "unsupported value %q, want Principal or Cluster", s.Key))
	}
	if s.Requests < 1 {
		v.add(fieldErr("spec.requests", "%d: at least 1", s.Requests))
	}
	if d := s.Period.Duration; d < 0 || d > maxPeriod || (d > 0 && d < time.Millisecond) {
		v.add(fieldErr("spec.period", "%s: want 1ms to %s (or leave it out for 1s)", d, maxPeriod))
	}
	if s.Burst < 0 {
		v.add(fieldErr("spec.burst", "%d: must not be negative (leave it out for requests)", s.Burst))
	}
	return v.result(KindRateLimitPolicy, p.Key())
}

// bucket returns the policy's token bucket: tokens per second and burst.
func (s *RateLimitPolicySpec) bucket() (rate, burst float64) {
	period := s.Period.Duration
	if period == 0 {
		period = time.Second
	}
	burst = float64(s.Burst)
	if burst == 0 {
		burst = float64(s.Requests)
	}
	return float64(s.Requests) / period.Seconds(), burst
}

// key returns the policy's key kind with its default.
func (s *RateLimitPolicySpec) key() RateLimitKey {
	if s.Key == "" {
		return KeyPrincipal
	}
	return s.Key
}
