package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
)

// exportApp makes cluster export demo/echo on egressPort with appProtocol
// app and one ready endpoint at backend.
func (f *egressFixture) exportApp(cluster, backend, app string) {
	f.export(cluster, backend)
	key := "exports/demo/echo/" + cluster
	f.update(func(e map[string]*causewayv1.Entry) {
		e[key].GetExport().Ports[0].AppProtocol = app
	})
}

// importApp makes cluster import demo/echo on egressVIP with appProtocol app.
func (f *egressFixture) importApp(cluster, app string) {
	f.importTo(cluster)
	key := "imports/" + cluster + "/demo/echo"
	f.update(func(e map[string]*causewayv1.Entry) {
		e[key].GetImport().Ports[0].AppProtocol = app
	})
}

// l7Backend serves HTTP/1.1 and h2c on 127.0.0.1 with h and returns its
// address.
func l7Backend(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protos}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// clusterTag answers every request with the cluster's name.
func clusterTag(cluster string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Cluster", cluster)
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", cluster, r.Method, body)
	})
}

// l7Fixture is east and west exporting demo/echo at L7 with app, north
// importing it; it returns north's egress address.
func l7Fixture(t *testing.T, app string, east, west http.Handler) (*egressFixture, string) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1},
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 1},
		egressClusterSpec{name: "north", region: "r3", zone: "z3", instances: 1})
	if east != nil {
		f.exportApp("east", l7Backend(t, east), app)
	}
	if west != nil {
		f.exportApp("west", l7Backend(t, west), app)
	}
	f.importApp("north", app)
	f.start()
	return f, f.vip("north/gw-0", egressVIP)
}

// TestL7BalancesEachRequest: requests over one keep-alive connection from
// north are spread over both exporting clusters (L4 would pin them all to
// the cluster the connection landed on).
func TestL7BalancesEachRequest(t *testing.T) {
	f, addr := l7Fixture(t, AppProtocolHTTP, clusterTag("east"), clusterTag("west"))
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	counts := map[string]int{}
	newConns := 0
	const n = 200
	for i := range n {
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) {
				if !ci.Reused {
					newConns++
				}
			}})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/x", strings.NewReader(fmt.Sprint(i)))
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		cluster, rest, _ := strings.Cut(string(body), " ")
		require.Equal(t, fmt.Sprintf("POST %d", i), rest)
		require.Equal(t, cluster, resp.Header.Get("X-Cluster"))
		counts[cluster]++
	}
	require.Equal(t, 1, newConns, "one client connection")
	require.GreaterOrEqual(t, counts["east"], n*3/10, "counts %v", counts)
	require.GreaterOrEqual(t, counts["west"], n*3/10, "counts %v", counts)
	// Idle pooled L7 streams are no load: balancing sees requests only
	// (it once counted pooled streams, and the cluster with one stream
	// more got no request at all).
	north := f.gw("north/gw-0")
	require.Zero(t, north.openStreams("east"))
	require.Zero(t, north.openStreams("west"))
}

// TestL7StreamsEndAfterEachRequest: each request's stream completes in
// both directions, so a peer's stream limit bounds concurrent requests,
// not requests over a connection's life (it once leaked: every request
// past the limit got 503).
func TestL7StreamsEndAfterEachRequest(t *testing.T) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 1},
		egressClusterSpec{name: "north", region: "r3", zone: "z3", instances: 1})
	f.exportApp("west", l7Backend(t, clusterTag("west")), AppProtocolHTTP)
	f.importApp("north", AppProtocolHTTP)
	f.maxStreams = 20
	f.start()
	addr := f.vip("north/gw-0", egressVIP)
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 200 {
		resp, err := client.Get("http://" + addr + "/")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d", i)
	}
}

// TestL7H2CStreamsAndTrailers: an h2c client (as gRPC is) gets the
// backend's streamed body and its trailers through both gateways, and the
// backend is spoken to in h2c.
func TestL7H2CStreamsAndTrailers(t *testing.T) {
	var backendProto string
	var mu sync.Mutex
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		backendProto = r.Proto
		mu.Unlock()
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("Content-Type", "application/grpc")
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(append([]byte("echo:"), body...))
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "fine")
	})
	_, addr := l7Fixture(t, AppProtocolGRPC, nil, backend)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/demo.Echo/Say", strings.NewReader("hello"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := client.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "HTTP/2.0", resp.Proto)
	require.Equal(t, "echo:hello", string(body))
	require.Equal(t, "0", resp.Trailer.Get("Grpc-Status"))
	require.Equal(t, "fine", resp.Trailer.Get("Grpc-Message"))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, "HTTP/2.0", backendProto, "grpc ports speak h2c to the backend")
}

// TestL7MovesUnsentRequestToNextCluster: west's backend refuses
// connections, so its gateway refuses the stream before the request was
// sent; every request is answered by east.
func TestL7MovesUnsentRequestToNextCluster(t *testing.T) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1},
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 1},
		egressClusterSpec{name: "north", region: "r3", zone: "z3", instances: 1})
	f.exportApp("east", l7Backend(t, clusterTag("east")), AppProtocolHTTP)
	f.exportApp("west", egressRefusingAddr(t), AppProtocolHTTP)
	f.importApp("north", AppProtocolHTTP)
	f.start()
	addr := f.vip("north/gw-0", egressVIP)
	client := &http.Client{Timeout: 10 * time.Second}
	for range 20 {
		resp, err := client.Post("http://"+addr+"/", "text/plain", strings.NewReader("b"))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		require.Equal(t, "east POST b", string(body))
	}
}

// TestL7BadInput: a malformed request gets 400 and hurts no other request;
// a backend that answers garbage gets 502; a body over the limit 413.
func TestL7BadInput(t *testing.T) {
	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer garbage.Close()
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "not http at all\r\n\r\n")
			_ = c.Close()
		}
	}()
	f := newEgressFixture(t,
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 1},
		egressClusterSpec{name: "north", region: "r3", zone: "z3", instances: 1})
	f.exportApp("west", garbage.Addr().String(), AppProtocolHTTP)
	f.importApp("north", AppProtocolHTTP)
	f.l7.MaxBodyBytes = 1000
	f.start()
	addr := f.vip("north/gw-0", egressVIP)

	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GARBAGE / HTTP/9.9 nonsense\r\n\r\n")
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, "400")

	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)

	// A body over the limit: 413 before anything is sent.
	resp, err = (&http.Client{Timeout: 10 * time.Second}).Post("http://"+addr+"/", "text/plain", strings.NewReader(strings.Repeat("x", 1001)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"/":               "/",
		"/a/b":            "/a/b",
		"/a/../admin":     "/admin",
		"/a/./b/":         "/a/b/",
		"//a///b":         "/a/b",
		"/../../etc":      "/etc",
		"/a/b/..":         "/a",
		"/.well-known/x":  "/.well-known/x",
		"/a/%2E%2E/admin": "/admin",
	} {
		u, err := url.ParseRequestURI(in)
		require.NoError(t, err)
		normalizePath(u)
		require.Equal(t, want, u.Path, "path %q", in)
	}
}
