package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/internal/lib/retry"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Client. Zero fields take the documented defaults.
type Options struct {
	// Cluster is the caller's cluster, sent to the federator for its logs.
	Cluster string
	// Component labels the client's metrics ("gateway", "dnsshim").
	Component string
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
	// Registerer for the client's metrics; if nil, not registered.
	Registerer prometheus.Registerer
	// MinBackoff is the first reconnect delay. If zero, 100ms.
	MinBackoff time.Duration
	// MaxBackoff caps the reconnect delay. If zero, 5s.
	MaxBackoff time.Duration
}

// Client keeps a View current from a federator's Catalog.Watch stream.
type Client struct {
	rpc  causewayv1.CatalogClient
	opts Options
	log  *slog.Logger
	m    *clientMetrics

	feed  *Feed // only the client publishes to it
	ready chan struct{}
}

// View returns the current view; nil until the first snapshot.
func (c *Client) View() *View { return c.feed.View() }

// Changed returns a channel closed at the next change of the view.
func (c *Client) Changed() <-chan struct{} { return c.feed.Changed() }

// NewClient returns a client over a federator connection the caller owns.
func NewClient(rpc causewayv1.CatalogClient, o Options) *Client {
	if o.MinBackoff == 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 5 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Client{
		rpc:   rpc,
		opts:  o,
		log:   log.With("component", "catalog"),
		m:     newClientMetrics(o.Registerer, o.Component),
		feed:  NewFeed(),
		ready: make(chan struct{}),
	}
	return c
}

// Ready is closed once the first full snapshot has arrived.
func (c *Client) Ready() <-chan struct{} { return c.ready }

// IsReady reports whether the first snapshot has arrived.
func (c *Client) IsReady() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

func (c *Client) publish(v *View) {
	c.feed.Publish(v)
	if v.StaleSince.IsZero() {
		c.m.staleSince.Set(0)
	} else {
		c.m.staleSince.Set(float64(v.StaleSince.Unix()))
	}
}

// Run watches until ctx ends, reconnecting with exponential back-off.
// It returns nil when ctx is done.
func (c *Client) Run(ctx context.Context) error {
	backoff := retry.Backoff{Min: c.opts.MinBackoff, Max: c.opts.MaxBackoff}
	for {
		gotData, err := c.watchOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.m.reconnects.Inc()
		if v := c.View(); c.IsReady() && v.StaleSince.IsZero() {
			stale := *v
			stale.StaleSince = time.Now()
			c.publish(&stale)
			c.log.Warn("lost the federator; serving the last catalog", "err", err)
		} else {
			c.log.Debug("catalog watch failed", "err", err)
		}
		if gotData {
			backoff.Reset()
		}
		if !backoff.Wait(ctx) {
			return nil
		}
	}
}

// watchOnce runs one Watch stream; gotData reports whether a snapshot arrived.
func (c *Client) watchOnce(ctx context.Context) (gotData bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &causewayv1.WatchRequest{Cluster: c.opts.Cluster}
	var entries map[string]*causewayv1.Entry
	if c.IsReady() { // resume from what we have; the server may answer a delta
		v := c.View()
		entries, req.SinceRevision = v.Entries(), v.Revision
	}
	stream, err := c.rpc.Watch(ctx, req)
	if err != nil {
		return false, fmt.Errorf("open catalog watch: %w", err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return gotData, fmt.Errorf("receive catalog: %w", err)
		}
		prev := entries
		if prev == nil && c.IsReady() {
			prev = c.View().Entries() // a snapshot after a reconnect
		}
		if resp.GetReset_() {
			entries = make(map[string]*causewayv1.Entry, len(resp.GetUpserts()))
			gotData = true
		} else if entries == nil {
			return false, errors.New("receive catalog: delta before snapshot")
		} else {
			gotData = true
			// Copy on write: published views are immutable.
			next := make(map[string]*causewayv1.Entry, len(entries)+len(resp.GetUpserts()))
			for k, e := range entries {
				next[k] = e
			}
			entries = next
		}
		for _, e := range resp.GetUpserts() {
			if err := checkEntry(e); err != nil {
				// Not a deletion: the key keeps its last good value.
				c.m.rejected.Inc()
				c.log.Warn("ignoring a catalog entry this build cannot read; keeping its last good value", "key", e.GetKey(), "err", err)
				if old, ok := prev[e.GetKey()]; ok {
					entries[e.GetKey()] = old // also across a snapshot
				}
				continue
			}
			entries[e.GetKey()] = e
		}
		for _, k := range resp.GetDeletes() {
			delete(entries, k)
		}
		c.publish(NewView(entries, resp.GetRevision()))
		c.m.updates.Inc()
		if !c.IsReady() {
			close(c.ready)
			c.log.Info("catalog synced", "revision", resp.GetRevision(), "entries", len(entries))
		}
	}
}
