package gateway

import (
	"net"
	"sync"
	"time"
)

// watchIdle calls onIdle once when tcp, the TCP leg of a flow, carried no
// payload byte in either direction for timeout. Every byte of a tunneled
// flow crosses its TCP leg, so the leg's idleness is the flow's. The idle
// time comes from the kernel (tcpIdle), which keeps the copy loops free of
// per-read bookkeeping; one timer per flow re-arms itself for the time
// left. Where the platform cannot tell, flows are never closed as idle.
// stop ends the watch; it is idempotent and safe to call from onIdle.
func watchIdle(tcp *net.TCPConn, timeout time.Duration, onIdle func()) (stop func()) {
	if timeout <= 0 {
		return func() {}
	}
	w := &idleWatch{}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = time.AfterFunc(timeout, func() {
		idle, ok := tcpIdle(tcp)
		w.mu.Lock()
		if w.stopped || !ok {
			w.mu.Unlock()
			return
		}
		if idle < timeout {
			w.timer.Reset(timeout - idle)
			w.mu.Unlock()
			return
		}
		w.stopped = true
		w.mu.Unlock()
		onIdle()
	})
	return w.stop
}

type idleWatch struct {
	mu      sync.Mutex // guards timer, stopped
	timer   *time.Timer
	stopped bool
}

func (w *idleWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}
