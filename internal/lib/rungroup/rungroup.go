// Package rungroup owns the lifetime of a process's long-running parts: it
// runs them under one context, and the first to fail stops the others.
package rungroup

import (
	"context"
	"sync"
)

// Group runs goroutines that share a context: the first error cancels it.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex // guards err
	err error
}

// New returns a group whose context derives from ctx.
func New(ctx context.Context) *Group {
	ctx, cancel := context.WithCancel(ctx)
	return &Group{ctx: ctx, cancel: cancel}
}

// Context is the group's context, cancelled by Stop or the first error.
func (g *Group) Context() context.Context { return g.ctx }

// Go runs fn; a non-nil error (the first one is kept, named by name) stops
// the group. An error returned after the group was stopped is ignored.
func (g *Group) Go(name string, fn func(ctx context.Context) error) {
	g.wg.Go(func() {
		if err := fn(g.ctx); err != nil && g.ctx.Err() == nil {
			g.mu.Lock()
			if g.err == nil {
				g.err = &PartError{Name: name, Err: err}
			}
			g.mu.Unlock()
			g.cancel()
		}
	})
}

// Err is the first error, if any.
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Wait waits for the group's context to end (ctx cancelled or a part
// failed), then stops the group and returns the first error.
func (g *Group) Wait() error {
	<-g.ctx.Done()
	return g.Stop()
}

// Stop cancels the group and waits for every goroutine.
func (g *Group) Stop() error {
	g.cancel()
	g.wg.Wait()
	return g.Err()
}

// PartError is the error of one named part of a group.
type PartError struct {
	Name string
	Err  error
}

func (e *PartError) Error() string { return e.Name + ": " + e.Err.Error() }
func (e *PartError) Unwrap() error { return e.Err }
