package devenv

import (
	"context"
	"sync"
)

// group runs goroutines that share a context: the first error cancels it.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex // guards err
	err error
}

func newGroup(ctx context.Context) *group {
	ctx, cancel := context.WithCancel(ctx)
	return &group{ctx: ctx, cancel: cancel}
}

// Go runs fn; a non-nil error (the first one is kept) stops the group.
func (g *group) Go(name string, fn func(ctx context.Context) error) {
	g.wg.Go(func() {
		if err := fn(g.ctx); err != nil && g.ctx.Err() == nil {
			g.mu.Lock()
			if g.err == nil {
				g.err = &componentError{name: name, err: err}
			}
			g.mu.Unlock()
			g.cancel()
		}
	})
}

// Err is the first error, if any.
func (g *group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Stop cancels the group and waits for every goroutine.
func (g *group) Stop() error {
	g.cancel()
	g.wg.Wait()
	return g.Err()
}

type componentError struct {
	name string
	err  error
}

func (e *componentError) Error() string { return e.name + ": " + e.err.Error() }
func (e *componentError) Unwrap() error { return e.err }
