package gateway

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// copyBufferSize is the size of the pooled copy buffers. A flow holds one
// per direction only while bytes are moving: an idle flow holds none (see
// copyFromTCP and copyFromStream), so 10,000 idle flows cost no buffers and
// a busy flow gets a large one (fewer reads, writes and stream handoffs).
const copyBufferSize = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { bufPool.Put(b) }

// copyFromTCP copies src to dst until EOF and returns the bytes written and
// the first read error (nil on a clean EOF), or the write error. It waits
// for src to be readable without holding a buffer: a buffer is taken from
// the pool when data is there and returned as soon as a read would block.
func copyFromTCP(dst io.Writer, src *net.TCPConn) (n int64, readErr, writeErr error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, err, nil
	}
	var bp *[]byte
	defer func() {
		if bp != nil {
			putBuf(bp)
		}
	}()
	var nr int
	var rerr error
	read := func(fd uintptr) bool {
		if bp == nil {
			bp = getBuf()
		}
		for {
			nr, rerr = syscall.Read(int(fd), *bp)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			putBuf(bp) // nothing to read: wait without a buffer
			bp = nil
			return false
		}
		return true
	}
	for {
		if err := rc.Read(read); err != nil {
			return n, err, nil // closed, or a deadline
		}
		switch {
		case rerr != nil:
			return n, rerr, nil // ECONNRESET and the like
		case nr <= 0:
			return n, nil, nil // EOF
		}
		nw, werr := dst.Write((*bp)[:nr])
		n += int64(nw)
		if werr != nil {
			return n, nil, werr
		}
	}
}

// copyFromStream copies src to dst until EOF and returns the bytes written
// and the first read error that is not io.EOF, or the write error. Like
// copyFromTCP it holds no buffer while the stream is idle: it waits with a
// one-byte Peek, then reads what is there into a pooled buffer, which it
// keeps only while reads fill it.
func copyFromStream(dst io.Writer, src *quic.Stream) (n int64, readErr, writeErr error) {
	var bp *[]byte
	defer func() {
		if bp != nil {
			putBuf(bp)
		}
	}()
	var one [1]byte
	for {
		if bp == nil {
			// Errors (EOF, reset, deadline) come again from Read below,
			// which also lets the stream account for its end.
			_, _ = src.Peek(one[:])
			bp = getBuf()
		}
		nr, rerr := src.Read(*bp)
		if nr > 0 {
			nw, werr := dst.Write((*bp)[:nr])
			n += int64(nw)
			if werr != nil {
				return n, nil, werr
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return n, nil, nil
			}
			return n, rerr, nil
		}
		if nr < len(*bp) { // drained what had arrived: wait without a buffer
			putBuf(bp)
			bp = nil
		}
	}
}

// pipe carries a flow between a TCP connection and a QUIC stream until both
// directions end. FIN maps to FIN; an error (RST) on one side resets the
// other. Once one direction has ended with FIN, the flow is reset when it
// carries no byte either way for halfClosed (see halfCloseReaper). It
// returns the bytes carried tcp→stream and stream→tcp. It runs one
// goroutine besides the caller's: each direction needs a blocked read.
func pipe(tcp *net.TCPConn, stream *quic.Stream, halfClosed time.Duration) (up, down int64) {
	// reset ends the flow both ways: a TCP RST becomes a stream reset and
	// a stream reset (or a peer that stopped reading) becomes a TCP RST.
	reset := func() {
		stream.CancelWrite(tunnel.CodeFlowReset)
		stream.CancelRead(tunnel.CodeFlowReset)
		_ = tcp.SetLinger(0)
		_ = tcp.Close()
	}
	half := halfCloseReaper{leg: tcp, timeout: halfClosed, reset: reset}
	defer half.end()
	var wg sync.WaitGroup
	wg.Go(func() {
		var rerr, werr error
		up, rerr, werr = copyFromTCP(stream, tcp)
		if rerr != nil || werr != nil {
			reset()
			return
		}
		_ = stream.Close() // FIN
		half.start()
	})
	var rerr, werr error
	down, rerr, werr = copyFromStream(tcp, stream)
	if rerr != nil || werr != nil {
		reset()
	} else {
		_ = tcp.CloseWrite()
		half.start()
	}
	wg.Wait()
	_ = tcp.Close()
	return up, down
}

// pipeTCP carries a flow between two TCP connections (a local target),
// with the same half-close bound as pipe.
func pipeTCP(client, backend *net.TCPConn, halfClosed time.Duration) (up, down int64) {
	resetBoth := func() {
		_ = client.SetLinger(0)
		_ = backend.SetLinger(0)
		_ = client.Close()
		_ = backend.Close()
	}
	half := halfCloseReaper{leg: backend, timeout: halfClosed, reset: resetBoth}
	defer half.end()
	var wg sync.WaitGroup
	one := func(dst, src *net.TCPConn, n *int64) {
		var rerr, werr error
		*n, rerr, werr = copyFromTCP(dst, src)
		if rerr != nil || werr != nil {
			resetBoth()
			return
		}
		_ = dst.CloseWrite()
		half.start()
	}
	wg.Go(func() { one(backend, client, &up) })
	one(client, backend, &down)
	wg.Wait()
	_ = client.Close()
	_ = backend.Close()
	return up, down
}

// halfCloseReaper bounds a half-closed flow: once one direction has ended
// with FIN, the side that sent it may be gone for good (a client that
// closed its socket), and the flow would otherwise last until the other
// side closes or FlowIdleTimeout (1 h) fires. From the first FIN on, the
// flow is reset when it carries no byte either way for timeout, read from
// leg's kernel counters (watchIdle): a half-closed flow still moving bytes
// (a download after the request's FIN) goes on.
type halfCloseReaper struct {
	leg     *net.TCPConn
	timeout time.Duration
	reset   func()

	mu    sync.Mutex // guards stop, ended
	stop  func()
	ended bool
}

// start arms the reaper once; later calls and calls after end do nothing.
func (h *halfCloseReaper) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != nil || h.ended {
		return
	}
	h.stop = watchIdle(h.leg, h.timeout, h.reset)
}

// end disarms the reaper (the flow is over).
func (h *halfCloseReaper) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = true
	if h.stop != nil {
		h.stop()
	}
}
