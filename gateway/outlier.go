package gateway

import (
	"sync"
	"time"
)

// Clock is the time source of outlier detection. Tests inject a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed; stop
	// prevents the call if it has not happened yet.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// outlierConfig tunes outlierDetector.
type outlierConfig struct {
	// failures is how many consecutive failures eject a cluster (≥ 1).
	failures int
	// base is the first ejection; each further consecutive failure
	// doubles it, up to max.
	base, max time.Duration
	clock     Clock
	// onEject and onReadmit report state changes (metrics); may be nil.
	onEject   func(cluster string)
	onReadmit func(cluster string)
}

// outlierDetector ejects peer clusters whose flows keep failing.
//
// Rules:
//   - A failure is a flow attempt that failed before any byte reached a
//     backend for a reason that says the cluster cannot serve: the peer
//     could not be dialed, a stream could not be opened, the stream was
//     reset before its response, or the response was NO_ENDPOINTS or
//     DIAL_FAILED. Refusals about the request itself (BAD_HEADER,
//     FORBIDDEN, UNKNOWN_SERVICE, NOT_EXPORTED), OVERLOADED and DRAINING
//     are not failures of the cluster.
//   - The n-th consecutive failure (n ≥ failures) ejects the cluster until
//     now + base×2^(n-failures), capped at max. After that time the cluster is
//     re-admitted, but its count is kept: the next failure ejects it for
//     twice as long. Any success resets the count and re-admits at once.
//   - Failures reported while a cluster is ejected do not extend the
//     ejection: flows that were in flight when it began, or last-resort
//     attempts, must not push it to the cap at once.
//   - Ejection never leaves a flow with nothing: Candidates orders ejected
//     clusters after every healthy one, and egress tries them (as a last
//     resort) when no healthy candidate is left or all of them failed.
type outlierDetector struct {
	cfg outlierConfig

	mu    sync.Mutex // guards state
	state map[string]*outlierState
}

type outlierState struct {
	failures int       // consecutive
	until    time.Time // ejected while now < until
	stop     func() bool
}

func newOutlierDetector(cfg outlierConfig) *outlierDetector {
	if cfg.failures < 1 {
		cfg.failures = 1
	}
	if cfg.clock == nil {
		cfg.clock = systemClock{}
	}
	return &outlierDetector{cfg: cfg, state: map[string]*outlierState{}}
}

// failure records a failed attempt on cluster and reports whether it
// ejected the cluster.
func (d *outlierDetector) failure(cluster string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.cfg.clock.Now()
	s := d.state[cluster]
	if s == nil {
		s = &outlierState{}
		d.state[cluster] = s
	}
	if now.Before(s.until) {
		return false
	}
	s.failures++
	if s.failures < d.cfg.failures {
		return false
	}
	dur := d.cfg.max
	if shift := s.failures - d.cfg.failures; shift < 32 {
		if b := d.cfg.base << shift; b > 0 && b < dur {
			dur = b
		}
	}
	s.until = now.Add(dur)
	if s.stop != nil {
		s.stop()
	}
	until := s.until
	s.stop = d.cfg.clock.AfterFunc(dur, func() { d.expire(cluster, until) })
	if d.cfg.onEject != nil {
		d.cfg.onEject(cluster)
	}
	return true
}

// expire reports the re-admission of cluster when its ejection that ended
// at until is still the current one.
func (d *outlierDetector) expire(cluster string, until time.Time) {
	d.mu.Lock()
	s := d.state[cluster]
	current := s != nil && s.until.Equal(until)
	if current {
		s.stop = nil
	}
	d.mu.Unlock()
	if current && d.cfg.onReadmit != nil {
		d.cfg.onReadmit(cluster)
	}
}

// success records a successful attempt on cluster: it resets the count
// and re-admits the cluster.
func (d *outlierDetector) success(cluster string) {
	d.mu.Lock()
	s := d.state[cluster]
	if s == nil {
		d.mu.Unlock()
		return
	}
	wasEjected := d.cfg.clock.Now().Before(s.until)
	if s.stop != nil {
		s.stop()
	}
	delete(d.state, cluster)
	d.mu.Unlock()
	if wasEjected && d.cfg.onReadmit != nil {
		d.cfg.onReadmit(cluster)
	}
}

// ejectedUntil returns when cluster is re-admitted, or the zero time when
// it is not ejected.
func (d *outlierDetector) ejectedUntil(cluster string) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.state[cluster]
	if s == nil || !d.cfg.clock.Now().Before(s.until) {
		return time.Time{}
	}
	return s.until
}

// consecutiveFailures returns cluster's current failure count.
func (d *outlierDetector) consecutiveFailures(cluster string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.state[cluster]; s != nil {
		return s.failures
	}
	return 0
}

// forget drops the state of clusters not in keep (clusters that left the
// federation) and returns the dropped names.
func (d *outlierDetector) forget(keep func(cluster string) bool) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var gone []string
	for c, s := range d.state {
		if keep(c) {
			continue
		}
		if s.stop != nil {
			s.stop()
		}
		delete(d.state, c)
		gone = append(gone, c)
	}
	return gone
}

// close stops every pending re-admission timer.
func (d *outlierDetector) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.state {
		if s.stop != nil {
			s.stop()
			s.stop = nil
		}
	}
}

// newOutliers returns the gateway's outlier detector, reporting to its
// metrics and log.
func (g *Gateway) newOutliers() *outlierDetector {
	return newOutlierDetector(outlierConfig{
		failures: g.cfg.OutlierFailures, base: g.cfg.OutlierBaseEjection, max: g.cfg.OutlierMaxEjection, clock: g.cfg.Clock,
		onEject: func(cluster string) {
			g.metrics.ejections.WithLabelValues(cluster).Inc()
			g.metrics.ejected.WithLabelValues(cluster).Set(1)
		},
		onReadmit: func(cluster string) { g.metrics.ejected.WithLabelValues(cluster).Set(0) },
	})
}
