package l7route

import (
	"errors"
	"math"
	"sync"
	"time"
)

// budgetBuckets is how many slices the budget window is kept in.
const budgetBuckets = 10

// BudgetConfig configures a Budget. The zero value is valid.
type BudgetConfig struct {
	// Ratio is the retries allowed per request in the window. If zero,
	// 0.2; negative means only the floor.
	Ratio float64
	// MinPerSecond is the floor: retries allowed per second of the window
	// whatever the requests. If zero, 10; negative means no floor.
	MinPerSecond float64
	// Window is how far back requests and retries count. If zero, 10s.
	Window time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Validate reports a config NewBudget would reject.
func (c BudgetConfig) Validate() error {
	if math.IsNaN(c.Ratio) || math.IsInf(c.Ratio, 0) || math.IsNaN(c.MinPerSecond) || math.IsInf(c.MinPerSecond, 0) {
		return errors.New("retry budget: ratio and minPerSecond must be finite")
	}
	if c.Window < 0 || (c.Window > 0 && c.Window < budgetBuckets*time.Millisecond) {
		return errors.New("retry budget: window must be at least 10ms")
	}
	return nil
}

// Budget limits retries to a share of requests over a sliding window plus
// a floor per second, so a failing clusterset is not hammered by retries.
// It counts; callers count their own metrics. Safe for concurrent use.
type Budget struct {
	ratio, floor float64
	width        time.Duration
	now          func() time.Time

	mu sync.Mutex // guards buckets
	// buckets is a ring of the window's slices, indexed by slice number
	// modulo budgetBuckets.
	buckets [budgetBuckets]bucket
}

type bucket struct {
	slice             int64 // which slice of time the counts are for
	requests, retries int64
}

// NewBudget returns a budget configured by cfg.
func NewBudget(cfg BudgetConfig) (*Budget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Budget{ratio: cfg.Ratio, floor: cfg.MinPerSecond, width: cfg.Window / budgetBuckets, now: cfg.Now}
	if b.ratio == 0 {
		b.ratio = 0.2
	}
	if cfg.Window == 0 {
		cfg.Window = 10 * time.Second
		b.width = cfg.Window / budgetBuckets
	}
	if b.floor == 0 {
		b.floor = 10
	}
	b.floor = max(b.floor, 0) * cfg.Window.Seconds()
	b.ratio = max(b.ratio, 0)
	if b.now == nil {
		b.now = time.Now
	}
	for i := range b.buckets {
		b.buckets[i].slice = math.MinInt64
	}
	return b, nil
}

// Request counts one request (its first try).
func (b *Budget) Request() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.currentLocked().requests++
}

// Retry reports whether one more retry fits the budget and, if so, counts
// it. A caller that gets false answers with the last try's result.
func (b *Budget) Retry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.currentLocked()
	var requests, retries int64
	for i := range b.buckets {
		if bk := &b.buckets[i]; bk.slice > cur.slice-budgetBuckets {
			requests += bk.requests
			retries += bk.retries
		}
	}
	if float64(retries+1) > b.ratio*float64(requests)+b.floor {
		return false
	}
	cur.retries++
	return true
}

// currentLocked returns the bucket of the current slice, reset if it held
// an older slice.
func (b *Budget) currentLocked() *bucket {
	slice := b.now().UnixNano() / int64(b.width)
	bk := &b.buckets[int(((slice%budgetBuckets)+budgetBuckets)%budgetBuckets)]
	if bk.slice != slice {
		*bk = bucket{slice: slice}
	}
	return bk
}
