package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// instance is the connection to one gateway instance of a peer cluster.
// Its goroutine (runInstance) dials it, holds the connection, and
// re-dials with capped, jittered exponential back-off when it dies. An
// instance that left the catalog is retired: it takes no new stream and
// closes its connection once its open streams have ended.
type instance struct {
	peer   *peer
	name   string
	addrs  []string
	log    *slog.Logger
	ctx    context.Context // ends when retired or when the gateway stops
	cancel context.CancelFunc
	idle   chan struct{} // (cap 1) signaled when a retired instance's last stream ends

	mu       sync.Mutex // guards conn, leaf, dialing, dialDone, lastErr, retryAt, draining, silent, retired, openOn, replaced
	conn     *quic.Conn
	leaf     []byte // DER of the certificate this gateway presented on conn
	dialing  bool
	dialDone chan struct{} // closed when the dial in progress ends
	lastErr  error
	retryAt  time.Time // next dial, while backing off
	draining bool      // the peer answered DRAINING on conn
	silent   bool      // nothing received on conn for longer than keep-alives allow
	retired  bool
	// openOn counts the open streams per connection (openLocked sums
	// them), and replaced holds a
	// channel for each replaced connection that still has some, closed
	// when its last one ends (see reverify.go).
	openOn   map[*quic.Conn]int
	replaced map[*quic.Conn]chan struct{}
	// replace (cap 1) asks the instance's goroutine to replace the
	// connection sent (ignored unless it is still the current one).
	replace chan *quic.Conn
	// abandon ends when streams still waiting for their response on conn
	// should give up and move to another candidate: the instance left the
	// catalog (a SIGKILLed gateway's lease is revoked at once) or went
	// silent (a partition). Streams already answered are not affected, and
	// attempts started after the silence was noticed are not abandoned by
	// it (the instance may be the last resort).
	abandon     context.Context
	abandonConn context.CancelFunc
}

// retire stops the instance taking new streams; its goroutine closes the
// connection when the open streams have ended.
func (in *instance) retire() {
	in.mu.Lock()
	in.retired = true
	in.abandonPendingLocked()
	in.mu.Unlock()
	in.cancel()
}

// release ends a stream taken on in by pick, on conn.
func (in *instance) release(conn *quic.Conn) {
	in.peer.open.Add(-1)
	in.mu.Lock()
	if in.openOn[conn]--; in.openOn[conn] <= 0 {
		delete(in.openOn, conn)
		if done, ok := in.replaced[conn]; ok {
			close(done)
			delete(in.replaced, conn)
		}
	}
	last := in.retired && in.openLocked() == 0
	in.mu.Unlock()
	if last {
		select {
		case in.idle <- struct{}{}:
		default:
		}
	}
}

// markDraining stops new streams going to in while conn is its connection.
func (in *instance) markDraining(conn *quic.Conn) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.conn == conn && !in.draining {
		in.draining = true
		in.log.Info("peer gateway is draining; no new flows to it")
	}
}

// usableLocked reports whether in takes new streams; in.mu is held.
func (in *instance) usableLocked() bool {
	return in.conn != nil && !in.draining && !in.retired && in.conn.Context().Err() == nil
}

// endDial records the end of a dial announced by dialing = true: conn,
// on which this gateway presented leaf, or err.
func (in *instance) endDial(conn *quic.Conn, leaf []byte, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.dialing {
		return
	}
	in.dialing = false
	close(in.dialDone)
	if err != nil {
		in.lastErr = err
		return
	}
	in.conn, in.leaf, in.draining, in.silent, in.lastErr = conn, leaf, false, false, nil
	if in.abandonConn != nil {
		in.abandonConn()
	}
	in.abandon, in.abandonConn = context.WithCancel(context.Background())
	if in.retired {
		in.abandonConn()
	}
}

// abandoned is the context that ends when streams on conn still waiting
// for their response should give up (see instance.abandon).
func (in *instance) abandoned(conn *quic.Conn) context.Context {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.conn != conn || in.abandon == nil {
		return context.Background()
	}
	return in.abandon
}

// abandonPendingLocked makes streams waiting for a response on the
// current connection give up; in.mu is held.
func (in *instance) abandonPendingLocked() {
	if in.abandonConn != nil {
		in.abandonConn()
	}
}

func openOf(in *instance) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.openLocked()
}

// openLocked is the number of streams open on in, on any of its
// connections; in.mu is held.
func (in *instance) openLocked() int {
	n := 0
	for _, c := range in.openOn {
		n += c
	}
	return n
}
