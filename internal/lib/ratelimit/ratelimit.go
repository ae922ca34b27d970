package ratelimit

import (
	"errors"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// Config configures a Table.
type Config struct {
	// Rate is how many events per second a key may have in the long run.
	// Required (positive).
	Rate float64
	// Burst is how many events a key may have at once. If zero, one
	// second's worth of Rate (at least 1).
	Burst float64
	// MaxKeys bounds the table. If zero, 65536.
	MaxKeys int
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// shards spread keys over several locks so that concurrent callers with
// different keys rarely wait for each other.
const shards = 16

// Table holds a token bucket per key.
type Table[K comparable] struct {
	rate, burst float64
	perShard    int
	now         func() time.Time
	seed        maphash.Seed
	shards      [shards]shard[K]
}

type shard[K comparable] struct {
	mu        sync.Mutex // guards the fields below
	buckets   map[K]*bucket
	overflow  bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a Table for cfg.
func New[K comparable](cfg Config) (*Table[K], error) {
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0) {
		return nil, errors.New("ratelimit: rate must be positive")
	}
	if cfg.Burst < 0 || math.IsNaN(cfg.Burst) || math.IsInf(cfg.Burst, 0) {
		return nil, errors.New("ratelimit: burst must not be negative")
	}
	if cfg.Burst == 0 {
		cfg.Burst = max(1, cfg.Rate)
	}
	if cfg.MaxKeys < 0 {
		return nil, errors.New("ratelimit: negative MaxKeys")
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = 65536
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Table[K]{rate: cfg.Rate, burst: cfg.Burst, perShard: max(1, cfg.MaxKeys/shards), now: cfg.Now, seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].buckets = map[K]*bucket{}
		t.shards[i].overflow = bucket{tokens: cfg.Burst}
	}
	return t, nil
}

func (t *Table[K]) shard(key K) *shard[K] {
	return &t.shards[maphash.Comparable(t.seed, key)%shards]
}

// Allow takes one token of key's bucket and reports whether there was one.
func (t *Table[K]) Allow(key K) bool {
	s := t.shard(key)
	now := t.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := t.bucketLocked(s, key, now, true)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Check reports whether key's bucket has a token, without taking it, and
// if not, how long until it has one.
func (t *Table[K]) Check(key K) (retryAfter time.Duration, ok bool) {
	s := t.shard(key)
	now := t.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := t.bucketLocked(s, key, now, false)
	if b == nil || b.tokens >= 1 {
		return 0, true
	}
	return time.Duration((1 - b.tokens) / t.rate * float64(time.Second)), false
}

// Take takes one token of key's bucket if it has one (an event that
// happened whatever the limit, such as a failure, is counted).
func (t *Table[K]) Take(key K) {
	s := t.shard(key)
	now := t.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := t.bucketLocked(s, key, now, true)
	b.tokens = max(0, b.tokens-1)
}

// Len is the number of keys in the table.
func (t *Table[K]) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

// bucketLocked returns key's bucket refilled to now; for an absent key, a
// new one when create (the overflow bucket when the shard is full of
// buckets that are not full), else nil.
func (t *Table[K]) bucketLocked(s *shard[K], key K, now time.Time, create bool) *bucket {
	b, ok := s.buckets[key]
	switch {
	case ok:
	case !create:
		return nil
	case len(s.buckets) < t.perShard || t.sweepLocked(s, now):
		b = &bucket{tokens: t.burst, last: now}
		s.buckets[key] = b
	default:
		b = &s.overflow
	}
	t.refill(b, now)
	return b
}

// sweepLocked drops the buckets that have refilled (at most once a
// second: a shard full of active keys is not rescanned per event) and
// reports whether there is room.
func (t *Table[K]) sweepLocked(s *shard[K], now time.Time) bool {
	if now.Sub(s.lastSweep) < time.Second {
		return false
	}
	s.lastSweep = now
	for k, b := range s.buckets {
		if t.refill(b, now); b.tokens >= t.burst {
			delete(s.buckets, k)
		}
	}
	return len(s.buckets) < t.perShard
}

func (t *Table[K]) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(t.burst, b.tokens+d*t.rate)
	}
	b.last = now
}
