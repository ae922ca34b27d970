package multicluster

// Client traffic of the scenarios: single GETs and loops of them that
// record every request's serving cluster or error.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// get does one GET on a new connection and returns the serving cluster.
func get(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var r backendReply
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("bad reply %q: %w", body, err)
	}
	return r.Cluster, nil
}

// result is one request of a traffic loop.
type result struct {
	start, end time.Time
	cluster    string
	err        error
}

// trafficLoop sends idempotent GETs, each on a new connection (so each is
// a new tunneled flow), from workers goroutines until stopped.
type trafficLoop struct {
	mu      sync.Mutex
	results []result
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func startTraffic(url string, workers int) *trafficLoop {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return startLoop(workers, func(ctx context.Context) (string, error) { return get(ctx, client, url) })
}

// startLoop calls fn from workers goroutines until stopped; fn returns
// who answered.
func startLoop(workers int, fn func(ctx context.Context) (string, error)) *trafficLoop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &trafficLoop{cancel: cancel}
	for range workers {
		l.wg.Go(func() {
			for n := 0; n < 100000 && ctx.Err() == nil; n++ {
				l.do(ctx, fn)
			}
		})
	}
	return l
}

// startOpenTraffic starts a GET every interval (each on a new
// connection), at most 64 in flight, whether or not earlier ones have
// answered: a request hanging on a dead peer does not hold the next ones
// back, as it would with a fixed set of sequential workers.
func startOpenTraffic(url string, interval time.Duration) *trafficLoop {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ctx, cancel := context.WithCancel(context.Background())
	l := &trafficLoop{cancel: cancel}
	slots := make(chan struct{}, 64)
	l.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for n := 0; n < 200000; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case slots <- struct{}{}:
			default:
				continue // 64 in flight: skip this tick
			}
			l.wg.Go(func() {
				defer func() { <-slots }()
				l.do(ctx, func(ctx context.Context) (string, error) { return get(ctx, client, url) })
			})
		}
	})
	return l
}

// do makes one request with fn and records it, unless the loop was
// stopped meanwhile.
func (l *trafficLoop) do(ctx context.Context, fn func(ctx context.Context) (string, error)) {
	r := result{start: time.Now()}
	r.cluster, r.err = fn(ctx)
	r.end = time.Now()
	if ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	l.results = append(l.results, r)
	l.mu.Unlock()
}

func (l *trafficLoop) stop() []result {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.results
}

// since returns the results that started at or after t.
func (l *trafficLoop) since(t time.Time) []result {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []result
	for _, r := range l.results {
		if !r.start.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// waitServedBy waits until n consecutive requests started after t were
// all served by cluster, and returns when the first of them started.
func (l *trafficLoop) waitServedBy(tb testing.TB, t time.Time, cluster string, n int, timeout time.Duration) time.Time {
	tb.Helper()
	var at time.Time
	require.Eventually(tb, func() bool {
		rs := l.since(t)
		sort.Slice(rs, func(i, j int) bool { return rs[i].start.Before(rs[j].start) })
		run := 0
		for i, r := range rs {
			if r.err == nil && r.cluster == cluster {
				if run == 0 {
					at = rs[i].start
				}
				run++
			} else {
				run = 0
			}
		}
		return run >= n
	}, timeout, 20*time.Millisecond, "traffic never settled on %s", cluster)
	return at
}

// failures are the failed requests among rs.
func failures(rs []result) []result {
	var out []result
	for _, r := range rs {
		if r.err != nil {
			out = append(out, r)
		}
	}
	return out
}
