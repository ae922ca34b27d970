package multicluster

import (
	"io"
	"net"
	"sync"
	"testing"
)

// runbookRelay forwards TCP connections from addr to target and can be
// cut and restored, so a test can take a dependency away from some
// processes (the runbook test's etcd outage) while everything else keeps
// using target directly. cut closes the listener and every relayed
// connection: dialers get "connection refused", as from a stopped server.
type runbookRelay struct {
	addr, target string

	mu    sync.Mutex // guards ln and conns
	ln    net.Listener
	conns map[net.Conn]struct{}

	wg sync.WaitGroup // accept loops and copy goroutines
}

// startRunbookRelay listens on addr and relays to target until the test ends.
func startRunbookRelay(t testing.TB, addr, target string) *runbookRelay {
	t.Helper()
	r := &runbookRelay{addr: addr, target: target, conns: map[net.Conn]struct{}{}}
	if err := r.restore(); err != nil {
		t.Fatalf("relay %s -> %s: %v", addr, target, err)
	}
	t.Cleanup(func() {
		r.cut()
		r.wg.Wait()
	})
	return r
}

// restore listens again; it is a no-op while listening.
func (r *runbookRelay) restore() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		return err
	}
	r.ln = ln
	r.wg.Add(1)
	go r.acceptLoop(ln)
	return nil
}

// cut closes the listener and every relayed connection.
func (r *runbookRelay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for c := range r.conns {
		c.Close()
		delete(r.conns, c)
	}
}

func (r *runbookRelay) acceptLoop(ln net.Listener) {
	defer r.wg.Done()
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", r.target)
		if err != nil {
			in.Close()
			continue
		}
		if !r.track(ln, in, out) {
			in.Close()
			out.Close()
			return
		}
		r.wg.Add(2)
		go r.pipe(in, out)
		go r.pipe(out, in)
	}
}

// track registers a relayed pair unless ln has been cut meanwhile.
func (r *runbookRelay) track(ln net.Listener, in, out net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != ln {
		return false
	}
	r.conns[in], r.conns[out] = struct{}{}, struct{}{}
	return true
}

// pipe copies src to dst; when either side ends, both are closed (etcd's
// gRPC needs no half-close).
func (r *runbookRelay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	_, _ = io.Copy(dst, src)
	src.Close()
	dst.Close()
	r.mu.Lock()
	delete(r.conns, src)
	delete(r.conns, dst)
	r.mu.Unlock()
}
