package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// malformedKind is one way a hostile or broken peer may open a stream.
type malformedKind struct {
	name  string
	write func(s *quic.Stream) error
	want  causewayv1.StreamCode
}

func rawFrame(body []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(body)))
	return append(b, body...)
}

func headerFrame(t testing.TB, mutate func(h *causewayv1.StreamHeader)) []byte {
	t.Helper()
	h := header("east")
	mutate(h)
	b, err := proto.Marshal(h)
	require.NoError(t, err)
	return rawFrame(b)
}

func malformedKinds(t testing.TB) []malformedKind {
	write := func(b []byte) func(s *quic.Stream) error {
		return func(s *quic.Stream) error { _, err := s.Write(b); return err }
	}
	bad := causewayv1.StreamCode_STREAM_CODE_BAD_HEADER
	return []malformedKind{
		{"oversize length prefix", write(append([]byte{0xff, 0xff}, bytes.Repeat([]byte{'x'}, 4096)...)), bad},
		{"garbage protobuf", write(rawFrame([]byte{0xff, 0xff, 0xff, 0xff, 0xff})), bad},
		{"wrong version", write(headerFrame(t, func(h *causewayv1.StreamHeader) { h.Version = 7 })), bad},
		{"bad service label", write(headerFrame(t, func(h *causewayv1.StreamHeader) { h.Service = "Echo/../../etc" })), bad},
		{"bad namespace label", write(headerFrame(t, func(h *causewayv1.StreamHeader) { h.Namespace = "" })), bad},
		{"truncated frame", func(s *quic.Stream) error {
			if _, err := s.Write(headerFrame(t, func(*causewayv1.StreamHeader) {})[:12]); err != nil {
				return err
			}
			return s.Close() // FIN inside the frame
		}, bad},
		{"closed early", func(s *quic.Stream) error {
			s.CancelWrite(tunnel.CodeFlowReset) // reset before the header
			return nil
		}, bad},
		// A stream the peer never sends a frame on does not exist for the
		// gateway (QUIC opens it implicitly only when a later stream is
		// used), so a stalled header starts with at least one byte.
		{"stalls in the length prefix", write([]byte{0x00}), bad}, // HeaderTimeout
		{"stalls in the header", write(headerFrame(t, func(*causewayv1.StreamHeader) {})[:6]), bad},
		{"spoofed source cluster", write(headerFrame(t, func(h *causewayv1.StreamHeader) { h.SourceCluster = "west" })),
			causewayv1.StreamCode_STREAM_CODE_FORBIDDEN},
	}
}

// TestIngressMalformedStreamsSpareConnection opens 1,000 malformed streams
// on one real QUIC connection to west's gateway while one good stream
// echoes traffic the whole time: every malformed stream gets its own error
// code, the good stream is unharmed and the connection stays up.
// Over 80 lines: one scenario whose steps share its connection.
func TestIngressMalformedStreamsSpareConnection(t *testing.T) {
	// Long enough that a busy machine delivers a whole header in time: a
	// later stream may open an earlier one (QUIC) before its header is sent.
	const headerTimeout = 1500 * time.Millisecond
	f := newFixture(t, func(c *Config) {
		if c.Cluster == "west" {
			c.HeaderTimeout = headerTimeout
		}
	})
	cert, err := f.clusters["east"].ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	conn, err := f.peerConn(t, cert, f.allBundles())
	require.NoError(t, err)
	defer conn.CloseWithError(0, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The good stream: an echo round trip after another until stopped.
	good, err := conn.OpenStreamSync(ctx)
	require.NoError(t, err)
	require.NoError(t, tunnel.WriteFrame(good, header("east")))
	require.NoError(t, good.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := tunnel.ReadResponse(good, 0)
	require.NoError(t, err)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_OK, resp.GetCode())
	stopGood := make(chan struct{})
	var rounds atomic.Int64
	var maxRTT atomic.Int64
	goodErr := make(chan error, 1)
	go func() {
		goodErr <- func() error {
			buf := make([]byte, 4096)
			for i := 0; i < 1_000_000; i++ {
				select {
				case <-stopGood:
					return nil
				default:
				}
				msg := bytes.Repeat([]byte(fmt.Sprintf("%08d", i)), 512)
				start := time.Now()
				_ = good.SetDeadline(start.Add(5 * time.Second))
				if _, err := good.Write(msg); err != nil {
					return fmt.Errorf("round %d: write: %w", i, err)
				}
				if _, err := io.ReadFull(good, buf); err != nil {
					return fmt.Errorf("round %d: read: %w", i, err)
				}
				if !bytes.Equal(msg, buf) {
					return fmt.Errorf("round %d: echo differs", i)
				}
				if d := int64(time.Since(start)); d > maxRTT.Load() {
					maxRTT.Store(d)
				}
				rounds.Add(1)
			}
			return nil
		}()
	}()

	kinds := malformedKinds(t)
	const streams, workers = 1000, 128
	codes := make([]causewayv1.StreamCode, streams)
	errs := make([]error, streams)
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				codes[i], errs[i] = malformedExchange(ctx, conn, kinds[i%len(kinds)])
			}
		})
	}
	for i := range streams {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	roundsDuring := rounds.Load()
	close(stopGood)
	require.NoError(t, <-goodErr, "the good stream was harmed")

	badHeaders := 0
	for i := range streams {
		k := kinds[i%len(kinds)]
		require.NoError(t, errs[i], "stream %d (%s)", i, k.name)
		require.Equal(t, k.want, codes[i], "stream %d (%s)", i, k.name)
		if k.want == causewayv1.StreamCode_STREAM_CODE_BAD_HEADER {
			badHeaders++
		}
	}
	require.NoError(t, conn.Context().Err(), "the connection was closed")
	require.Positive(t, roundsDuring, "the good stream made no progress")
	t.Logf("%d malformed streams answered in %v; good stream: %d echo rounds of 4 KiB meanwhile, max round trip %v",
		streams, elapsed.Round(time.Millisecond), roundsDuring, time.Duration(maxRTT.Load()).Round(time.Microsecond))

	// The good stream still half-closes cleanly, and the connection carries new flows.
	require.NoError(t, good.Close())
	rest, err := io.ReadAll(good)
	require.NoError(t, err)
	require.Empty(t, rest)
	require.NoError(t, certsTunnelRequest(ctx, conn, "after the storm"))

	west := f.clusters["west"].gw
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(west.metrics.streams.vec.WithLabelValues("ingress", labelOther, "east", resultError)) == float64(badHeaders)
	}, 10*time.Second, 10*time.Millisecond, "bad headers counted as ingress errors")
}

// malformedExchange opens one stream, misbehaves as k says and returns the
// response code the gateway sent.
func malformedExchange(ctx context.Context, conn *quic.Conn, k malformedKind) (causewayv1.StreamCode, error) {
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return 0, fmt.Errorf("open stream: %w", err)
	}
	defer s.CancelRead(0)
	defer s.CancelWrite(0)
	if err := s.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return 0, err
	}
	if err := k.write(s); err != nil {
		var se *quic.StreamError // the gateway may already have stopped reading
		if !errors.As(err, &se) {
			return 0, fmt.Errorf("write: %w", err)
		}
	}
	resp, err := tunnel.ReadResponse(s, 0)
	if err != nil {
		return 0, fmt.Errorf("read response: %w", err)
	}
	// After a refusal the gateway closes its side: nothing else follows.
	if n, err := s.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("after the response: %d bytes, %v", n, err)
	}
	return resp.GetCode(), nil
}
