package gateway

import (
	"io"
	"sync"
)

// flowTracker counts open flows and can end them all. Unlike a WaitGroup
// it may be waited on while flows are still being added, and after close
// it admits no new flow.
type flowTracker struct {
	mu     sync.Mutex // guards every field
	next   uint64
	open   map[uint64]io.Closer
	closed bool
	idle   chan struct{} // closed when open becomes empty; nil when not waited on
}

// add registers a flow ended by c; ok is false once the tracker is closed.
func (t *flowTracker) add(c io.Closer) (id uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, false
	}
	if t.open == nil {
		t.open = map[uint64]io.Closer{}
	}
	t.next++
	t.open[t.next] = c
	return t.next, true
}

// done unregisters a flow.
func (t *flowTracker) done(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.open, id)
	if len(t.open) == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// idleCh returns a channel closed when no flow is open.
func (t *flowTracker) idleCh() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.open) == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	return t.idle
}

// closeAll stops admitting flows and ends every open one.
func (t *flowTracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	closers := make([]io.Closer, 0, len(t.open))
	for _, c := range t.open {
		closers = append(closers, c)
	}
	t.mu.Unlock()
	for _, c := range closers {
		_ = c.Close()
	}
}

// closerFunc adapts a function to io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }
