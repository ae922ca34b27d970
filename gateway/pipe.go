package gateway

import (
	"errors"
	"io"
	"net"
	"sync"

	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

const copyBufferSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// copyCounted copies src to dst with a pooled buffer and returns the bytes
// written and the first read error that is not io.EOF (nil on a clean EOF),
// or the write error.
func copyCounted(dst io.Writer, src io.Reader) (n int64, readErr, writeErr error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
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
	}
}

// pipe carries a flow between a TCP connection and a QUIC stream until both
// directions end. FIN maps to FIN; an error (RST) on one side resets the
// other. It returns the bytes carried tcp→stream and stream→tcp.
func pipe(tcp *net.TCPConn, stream *quic.Stream) (up, down int64) {
	// reset ends the flow both ways: a TCP RST becomes a stream reset and
	// a stream reset (or a peer that stopped reading) becomes a TCP RST.
	reset := func() {
		stream.CancelWrite(tunnel.CodeFlowReset)
		stream.CancelRead(tunnel.CodeFlowReset)
		_ = tcp.SetLinger(0)
		_ = tcp.Close()
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var rerr, werr error
		up, rerr, werr = copyCounted(stream, tcp)
		if rerr != nil || werr != nil {
			reset()
			return
		}
		_ = stream.Close() // FIN
	})
	var rerr, werr error
	down, rerr, werr = copyCounted(tcp, stream)
	if rerr != nil || werr != nil {
		reset()
	} else {
		_ = tcp.CloseWrite()
	}
	wg.Wait()
	_ = tcp.Close()
	return up, down
}

// pipeTCP carries a flow between two TCP connections (a local target).
func pipeTCP(client, backend *net.TCPConn) (up, down int64) {
	var wg sync.WaitGroup
	one := func(dst, src *net.TCPConn, n *int64) {
		var rerr, werr error
		*n, rerr, werr = copyCounted(dst, src)
		if rerr != nil || werr != nil {
			_ = client.SetLinger(0)
			_ = backend.SetLinger(0)
			_ = client.Close()
			_ = backend.Close()
			return
		}
		_ = dst.CloseWrite()
	}
	wg.Go(func() { one(backend, client, &up) })
	one(client, backend, &down)
	wg.Wait()
	_ = client.Close()
	_ = backend.Close()
	return up, down
}
