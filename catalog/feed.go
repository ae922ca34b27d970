package catalog

import (
	"sync"
	"sync/atomic"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
)

// Feed holds the current View and wakes readers when it changes. The zero
// value is not usable; call NewFeed.
type Feed struct {
	view atomic.Pointer[View]

	mu      sync.Mutex // guards changed
	changed chan struct{}
}

// NewFeed returns a feed holding an empty view.
func NewFeed() *Feed {
	f := &Feed{changed: make(chan struct{})}
	f.view.Store(NewView(map[string]*causewayv1.Entry{}, 0))
	return f
}

// View returns the current view; never nil.
func (f *Feed) View() *View { return f.view.Load() }

// Changed returns a channel closed at the next Publish. Read it before
// View to never miss a change.
func (f *Feed) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// Publish makes v current and wakes every waiter.
func (f *Feed) Publish(v *View) {
	f.view.Store(v)
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}
