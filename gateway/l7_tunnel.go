package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/quic-go/quic-go"
)

// errNotSent wraps the failures of an attempt after which no byte of the
// request left the gateway, so another candidate may take the request.
var errNotSent = errors.New("request not sent")

func notSent(err error) error { return fmt.Errorf("%w: %w", errNotSent, err) }

// tunnelRoundTrip sends req to cluster's gateway on a stream of its own
// and returns the response; the stream ends with the response's body. A
// replayable request travels right behind the stream header (a refusal
// loses nothing: it is sent again elsewhere); any other waits for the OK.
func (g *Gateway) tunnelRoundTrip(ctx context.Context, t egressTarget, cluster string, req *http.Request, replayable bool) (*http.Response, error) {
	var early []byte
	if replayable {
		var b bytes.Buffer
		if err := req.Write(&b); err != nil {
			return nil, notSent(fmt.Errorf("encode request: %w", err))
		}
		early = b.Bytes()
	}
	in, conn, err := g.peers.pick(ctx, cluster, false)
	if err != nil {
		return nil, notSent(err)
	}
	stream, err := g.openStreamOn(ctx, in.abandoned(conn), conn, cluster, t, req.RemoteAddr, early)
	if err != nil {
		if refusalCode(err) == causewayv1.StreamCode_STREAM_CODE_DRAINING {
			in.markDraining(conn)
		}
		in.release(conn)
		return nil, notSent(err)
	}
	return exchange(ctx, stream, req, early != nil, func() { in.release(conn) })
}

// exchange writes req on stream (HTTP/1.1 framing; the body streams on
// while the response is read, as gRPC streams need) and reads the
// response; sent means it went out already (only the FIN is left). done
// runs once the response body is closed or the exchange failed; ctx
// ending resets the stream.
func exchange(ctx context.Context, stream *quic.Stream, req *http.Request, sent bool, done func()) (*http.Response, error) {
	reset := func() {
		stream.CancelRead(tunnel.CodeFlowReset)
		stream.CancelWrite(tunnel.CodeFlowReset)
	}
	stop := context.AfterFunc(ctx, reset)
	if sent {
		_ = stream.Close()
	} else {
		go func() {
			if err := req.Write(stream); err != nil {
				stream.CancelWrite(tunnel.CodeFlowReset)
				return
			}
			_ = stream.Close()
		}()
	}
	resp, err := http.ReadResponse(bufio.NewReader(stream), req)
	if err != nil {
		stop()
		reset()
		done()
		return nil, fmt.Errorf("read response: %w", err)
	}
	var once sync.Once
	resp.Body = &endingBody{ReadCloser: resp.Body, end: func() {
		once.Do(func() {
			stop()
			stream.CancelRead(tunnel.CodeFlowReset) // a body not read to its end
			done()
		})
	}}
	return resp, nil
}

// endingBody runs end when closed.
type endingBody struct {
	io.ReadCloser
	end func()
}

func (b *endingBody) Close() error {
	err := b.ReadCloser.Close()
	b.end()
	return err
}

// handleIngressRequest serves a stream that carries one HTTP request: it
// admits it as a flow is admitted, reads the request, sends it to a local
// backend in the protocol the port says, and writes the response back.
func (g *Gateway) handleIngressRequest(ctx context.Context, stream *quic.Stream, h *causewayv1.StreamHeader, peerID certs.ID) string {
	v := g.src.View()
	key := catalog.ServiceKey{Namespace: h.GetNamespace(), Name: h.GetService()}
	if _, ref := g.checkIngress(v, h, peerID); ref != nil {
		g.log.Debug("request stream refused", "peer", peerID.String(), "service", key.String(), "code", ref.code.String(), "err", ref.msg)
		g.refuse(stream, ref, tunnel.CodeFlowReset)
		return resultRefused
	}
	_ = stream.SetWriteDeadline(time.Now().Add(g.cfg.HeaderTimeout))
	if err := tunnel.WriteFrame(stream, &causewayv1.StreamResponse{Code: causewayv1.StreamCode_STREAM_CODE_OK}); err != nil {
		stream.CancelRead(tunnel.CodeProtocolError)
		stream.CancelWrite(tunnel.CodeProtocolError)
		return resultError
	}
	_ = stream.SetWriteDeadline(time.Time{})
	_ = stream.SetReadDeadline(time.Now().Add(g.cfg.HeaderTimeout))
	req, err := http.ReadRequest(bufio.NewReader(io.LimitReader(stream, 1<<62)))
	if err != nil {
		writeStatus(stream, http.StatusBadRequest, "malformed request: "+err.Error(), false)
		stream.CancelRead(tunnel.CodeProtocolError)
		return resultError
	}
	_ = stream.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req = req.WithContext(ctx)
	req.RequestURI, req.URL.Scheme, req.URL.Host = "", "http", backendHost(key, h.GetPort())
	resp, err := g.backendTransport(h.GetAppProtocol()).RoundTrip(req)
	if err != nil {
		g.log.Debug("backend request failed", "service", key.String(), "err", err)
		writeStatus(stream, http.StatusBadGateway, "backend failed", errors.Is(err, errNotSent))
		stream.CancelRead(tunnel.CodeFlowReset)
		return resultError
	}
	if err := writeResponse(stream, resp); err != nil {
		stream.CancelWrite(tunnel.CodeFlowReset)
		stream.CancelRead(tunnel.CodeFlowReset)
		return resultError
	}
	// The request's FIN may still be unread (nothing after the request
	// matters): stop reading, so that the stream completes. Until both of
	// its directions end, a stream counts against the peer's stream limit.
	stream.CancelRead(tunnel.CodeFlowReset)
	return resultOK
}

// writeStatus answers a request stream with a short plain-text response
// and closes its send side; unsent marks it as a request that reached no
// backend (unsentHeader).
func writeStatus(stream *quic.Stream, code int, msg string, unsent bool) {
	_ = stream.SetWriteDeadline(time.Now().Add(5 * time.Second))
	extra := ""
	if unsent {
		extra = unsentHeader + ": 1\r\n"
	}
	_, _ = fmt.Fprintf(stream, "HTTP/1.1 %03d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s\n",
		code, http.StatusText(code), extra, len(msg)+1, msg)
	_ = stream.Close()
}

// writeResponse writes resp on w in HTTP/1.1 framing and closes its body:
// a body of known length from an HTTP/1.1 backend keeps its
// Content-Length; any other is chunked and flushed as it arrives, then
// followed by the trailers (gRPC's status travels there).
func writeResponse(w io.WriteCloser, resp *http.Response) error {
	defer resp.Body.Close()
	bw := bufio.NewWriterSize(w, 4<<10)
	fmt.Fprintf(bw, "HTTP/1.1 %03d %s\r\n", resp.StatusCode, http.StatusText(resp.StatusCode))
	h := resp.Header.Clone()
	for _, name := range hopByHop {
		h.Del(name)
	}
	h.Del(unsentHeader) // only this gateway says so, never a backend
	bodyless := resp.Request != nil && resp.Request.Method == http.MethodHead ||
		resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified || resp.StatusCode < 200
	sized := !bodyless && resp.ContentLength >= 0 && resp.ProtoMajor == 1
	switch {
	case sized:
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	case !bodyless:
		h.Del("Content-Length")
		h.Set("Transfer-Encoding", "chunked")
	}
	if err := h.Write(bw); err != nil {
		return err
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	var err error
	switch {
	case sized:
		err = copyFlushing(bw, nil, resp.Body)
	case !bodyless:
		err = writeChunked(bw, resp)
	}
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return w.Close()
}

// writeChunked copies resp's body as chunks, flushing each, then the last
// chunk and the trailers.
func writeChunked(bw *bufio.Writer, resp *http.Response) error {
	cw := httputil.NewChunkedWriter(bw)
	if err := copyFlushing(cw, bw, resp.Body); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	if err := resp.Trailer.Write(bw); err != nil {
		return err
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// copyBufs are the buffers of body copies.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyFlushing copies src to dst, flushing bw (if set) after each read so
// that streamed bodies are not held back; a body of known length needs
// no flush before its end.
func copyFlushing(dst io.Writer, bw *bufio.Writer, src io.Reader) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
			if bw != nil {
				if werr := bw.Flush(); werr != nil {
					return werr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read backend response: %w", err)
		}
	}
}
