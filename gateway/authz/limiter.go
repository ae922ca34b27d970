package authz

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/causeway-mesh/causeway/internal/lib/ratelimit"
)

// defaultMaxKeys bounds the callers one RateLimitPolicy tracks.
const defaultMaxKeys = 16384

// LimiterConfig configures the rate limiters of a Table. The zero value is
// valid.
type LimiterConfig struct {
	// MaxKeys bounds the callers (principals or clusters) each
	// RateLimitPolicy tracks at once: memory is at most MaxKeys buckets
	// per policy. Callers whose buckets have refilled are forgotten
	// first; when every bucket is in use, new callers share one overflow
	// bucket per shard, so callers already tracked keep their state (see
	// internal/lib/ratelimit). If zero (or negative), 16384.
	MaxKeys int
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// limiterID identifies a limiter's configuration: an update that keeps it
// keeps the limiter's buckets.
type limiterID struct {
	policy      PolicyKey
	key         RateLimitKey
	rate, burst float64
}

// limiter is one RateLimitPolicy's token buckets.
type limiter struct {
	name    string // namespace/name
	key     RateLimitKey
	buckets *ratelimit.Table[Principal]
}

// serviceLimits are one service's limiters, merged per port like
// servicePolicies.
type serviceLimits struct {
	anyPort []*limiter
	byPort  map[int32][]*limiter
}

// Limit is the outcome of Snapshot.Limit.
type Limit struct {
	Allowed bool
	// RetryAfter, when refused, is how long until the caller has a token
	// again in every limit that refused it.
	RetryAfter time.Duration
	// Policy is the namespace/name of the RateLimitPolicy that refused
	// (the one with the longest wait).
	Policy string
}

// Limit takes a token for principal p on port of svc from the bucket of
// every RateLimitPolicy that applies, if each has one; if any has none it
// takes no token and refuses. Limits are per Table (per gateway instance).
func (s *Snapshot) Limit(svc ServiceKey, port int32, p Principal) Limit {
	ls := s.limiters(svc, port)
	if len(ls) == 0 {
		return Limit{Allowed: true}
	}
	refused := Limit{}
	for _, l := range ls {
		if wait, ok := l.buckets.Check(l.keyOf(p)); !ok && wait >= refused.RetryAfter {
			refused.RetryAfter, refused.Policy = wait, l.name
		}
	}
	if refused.Policy != "" {
		return refused
	}
	for _, l := range ls {
		// A concurrent caller of the same key may take the token
		// between Check and Allow: refuse then, as if Check had.
		if !l.buckets.Allow(l.keyOf(p)) {
			wait, _ := l.buckets.Check(l.keyOf(p))
			return Limit{RetryAfter: wait, Policy: l.name}
		}
	}
	return Limit{Allowed: true}
}

// RetryAfterSeconds is the Retry-After header value for a wait: whole
// seconds, rounded up, at least 1.
func RetryAfterSeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}

func (l *limiter) keyOf(p Principal) Principal {
	if l.key == KeyCluster {
		return Principal{Cluster: p.Cluster, Domain: p.Domain}
	}
	return p
}

func (s *Snapshot) limiters(svc ServiceKey, port int32) []*limiter {
	sl := s.limits[svc]
	if sl == nil {
		return nil
	}
	if ls, ok := sl.byPort[port]; ok {
		return ls
	}
	return sl.anyPort
}

// compileLimits builds the limiters of valid policies, reusing the live
// limiter of every policy whose bucket is unchanged, and returns them by
// service and by ID.
func (t *Table) compileLimits(policies []*RateLimitPolicy) (map[ServiceKey]*serviceLimits, map[limiterID]*limiter) {
	sorted := slices.Clone(policies)
	slices.SortFunc(sorted, func(a, b *RateLimitPolicy) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	byID := make(map[limiterID]*limiter, len(sorted))
	out := map[ServiceKey]*serviceLimits{}
	built := make([]*limiter, len(sorted))
	for i, p := range sorted {
		rate, burst := p.Spec.bucket()
		id := limiterID{policy: p.Key(), key: p.Spec.key(), rate: rate, burst: burst}
		l := t.buckets[id]
		if l == nil {
			// Validated: rate and burst are positive and finite.
			table, err := ratelimit.New[Principal](ratelimit.Config{Rate: rate, Burst: burst, MaxKeys: t.limiter.MaxKeys, Now: t.limiter.Now})
			if err != nil {
				continue
			}
			l = &limiter{name: p.Key().String(), key: id.key, buckets: table}
		}
		byID[id], built[i] = l, l
		key := ServiceKey{Namespace: p.Namespace, Name: p.Spec.Service}
		if out[key] == nil {
			out[key] = &serviceLimits{byPort: map[int32][]*limiter{}}
		}
		for _, port := range p.Spec.Ports {
			out[key].byPort[port] = nil
		}
	}
	for i, p := range sorted {
		sl, l := out[ServiceKey{Namespace: p.Namespace, Name: p.Spec.Service}], built[i]
		if l == nil {
			continue
		}
		if len(p.Spec.Ports) == 0 {
			sl.anyPort = append(sl.anyPort, l)
			for port := range sl.byPort {
				sl.byPort[port] = append(sl.byPort[port], l)
			}
			continue
		}
		for _, port := range p.Spec.Ports {
			sl.byPort[port] = append(sl.byPort[port], l)
		}
	}
	return out, byID
}
