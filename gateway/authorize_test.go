package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/gateway/authz"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// Client addresses of the authorization tests: east runs shop/cart at
// authzCart and shop/other at authzOther; 127.0.0.1 is anonymous.
const (
	authzCart  = "127.0.0.2"
	authzOther = "127.0.0.3"
)

// authzPolicy lets only east's shop/cart reach demo/echo; rateLimits, if
// set, is appended as the file's rateLimits section.
const authzPolicy = `version: 1
policies:
- metadata: {namespace: demo, name: echo-callers}
  spec:
    service: echo
    rules:
    - from: [{cluster: east, namespace: shop, serviceAccount: cart}]
`

// authzFixture is west exporting demo/echo (L4, or L7 with app) under
// policy, east importing it with shop/cart and shop/other clients; it
// returns east's egress address.
func authzFixture(t *testing.T, app, policy string, backend string) (*egressFixture, string) {
	t.Helper()
	f := newEgressFixture(t,
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 1},
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1})
	if app == "" {
		f.export("west", backend)
		f.importTo("east")
	} else {
		f.exportApp("west", backend, app)
		f.importApp("east", app)
	}
	f.sources = map[string]authz.SourceResolver{"east": eastSources(t)}
	f.authorization = map[string]Authorizer{"west": authzTable(t, "west", policy)}
	f.start()
	return f, f.vip("east/gw-0", egressVIP)
}

// eastSources is east's resolver: authzCart is shop/cart, authzOther
// shop/other.
func eastSources(t *testing.T) authz.SourceResolver {
	t.Helper()
	res, err := authz.NewStaticResolver("east", domain, []authz.Identity{
		{CIDR: authzCart + "/32", Namespace: "shop", ServiceAccount: "cart"},
		{CIDR: authzOther + "/32", Namespace: "shop", ServiceAccount: "other"},
	})
	require.NoError(t, err)
	return res
}

// authzTable is cluster's table of the static file policy, on a fixed
// clock (buckets never refill).
func authzTable(t *testing.T, cluster, policy string) *authz.Table {
	t.Helper()
	st, err := authz.ParseStatic([]byte(policy), cluster, domain)
	require.NoError(t, err)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	table := authz.NewTable(authz.LimiterConfig{Now: func() time.Time { return now }})
	statuses, err := table.Update(st.Set, nil)
	require.NoError(t, err)
	require.NoError(t, authz.Errors(statuses))
	return table
}

// TestAuthzRefusalIsFinal: a flow refused FORBIDDEN by one exporting
// cluster is reset, not tried on the other one (docs/protocol.md): each
// denied flow is decided exactly once over both clusters.
func TestAuthzRefusalIsFinal(t *testing.T) {
	f := newEgressFixture(t,
		egressClusterSpec{name: "west", region: "r2", zone: "z2", instances: 1},
		egressClusterSpec{name: "north", region: "r3", zone: "z3", instances: 1},
		egressClusterSpec{name: "east", region: "r1", zone: "z1", instances: 1})
	f.export("west", egressTaggedEcho(t, "west"))
	f.export("north", egressTaggedEcho(t, "north"))
	f.importTo("east")
	f.sources = map[string]authz.SourceResolver{"east": eastSources(t)}
	f.authorization = map[string]Authorizer{"west": authzTable(t, "west", authzPolicy), "north": authzTable(t, "north", authzPolicy)}
	f.start()
	addr := f.vip("east/gw-0", egressVIP)
	const n = 6
	for range n {
		got, _ := flowFrom(authzOther, addr, "hi")
		require.Empty(t, got)
	}
	west, north := f.gw("west/gw-0"), f.gw("north/gw-0")
	require.Equal(t, n, decisions(west, authzDenied)+decisions(north, authzDenied))
	got, err := flowFrom(authzCart, addr, "hi")
	require.NoError(t, err)
	require.Contains(t, []string{"west hi", "north hi"}, got)
}

// decisions reads west's causeway_gateway_authz_decisions_total for
// demo/echo from east.
func decisions(g *Gateway, result string) int {
	return int(testutil.ToFloat64(g.metrics.decisions.vec.WithLabelValues("demo/echo", "east", result)))
}

// flowFrom sends msg through addr from client address ip and returns what
// came back; a refused flow is reset without a byte.
func flowFrom(ip, addr, msg string) (string, error) {
	c, err := dialFrom(ip, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	_ = c.CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestAuthzL4: east's shop/cart gets through to west's demo/echo; shop/other
// and anonymous clients are reset before any byte, and west counts each
// decision.
func TestAuthzL4(t *testing.T) {
	f, addr := authzFixture(t, "", authzPolicy, egressTaggedEcho(t, "west"))
	got, err := flowFrom(authzCart, addr, "hi")
	require.NoError(t, err)
	require.Equal(t, "west hi", got)
	for _, ip := range []string{authzOther, "127.0.0.1"} {
		got, _ := flowFrom(ip, addr, "hi")
		require.Empty(t, got, "client %s must be refused", ip)
	}
	west := f.gw("west/gw-0")
	require.Equal(t, 1, decisions(west, authzAllowed))
	require.Equal(t, 2, decisions(west, authzDenied))
}

// l7From is an HTTP client whose connections come from ip.
func l7From(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// identityEcho answers with the SourceIdentityHeader the backend got.
var identityEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "identity=%q", r.Header.Get(SourceIdentityHeader))
})

// authzGet sends a GET to addr with client, optionally forging the identity
// header, and returns the status, Retry-After and body.
func authzGet(t *testing.T, client *http.Client, addr, forged string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/x", nil)
	require.NoError(t, err)
	if forged != "" {
		req.Header.Set(SourceIdentityHeader, forged)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(body)
}

// TestAuthzL7: per request on pooled streams, shop/cart gets 200 and the
// backend never sees the identity header; shop/other gets 403 even when it
// forges shop/cart's identity in the header.
func TestAuthzL7(t *testing.T) {
	f, addr := authzFixture(t, AppProtocolHTTP, authzPolicy, l7Backend(t, identityEcho))
	cart, other := l7From(t, authzCart), l7From(t, authzOther)
	cartID := "spiffe://east." + domain + "/ns/shop/sa/cart"
	for range 3 { // interleaved on the same pooled L7 streams
		code, _, body := authzGet(t, cart, addr, "")
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, `identity=""`, body, "backends never see the header")
		code, _, body = authzGet(t, other, addr, "")
		require.Equal(t, http.StatusForbidden, code, body)
		require.Contains(t, body, string(authz.ReasonNoAllowMatch))
		code, _, body = authzGet(t, other, addr, cartID) // forged: ignored
		require.Equal(t, http.StatusForbidden, code, body)
	}
	west := f.gw("west/gw-0")
	require.Equal(t, 3, decisions(west, authzAllowed))
	require.Equal(t, 6, decisions(west, authzDenied))
}

// TestAuthzRateLimit: over its RateLimitPolicy a caller gets 429 with
// Retry-After (L7); new L4 flows over it are reset.
func TestAuthzRateLimit(t *testing.T) {
	const limited = authzPolicy + `rateLimits:
- metadata: {namespace: demo, name: echo-per-caller}
  spec: {service: echo, requests: 2, period: 1h}
`
	t.Run("L7", func(t *testing.T) {
		f, addr := authzFixture(t, AppProtocolHTTP, limited, l7Backend(t, identityEcho))
		cart := l7From(t, authzCart)
		for range 2 {
			code, _, body := authzGet(t, cart, addr, "")
			require.Equal(t, http.StatusOK, code, body)
		}
		code, retry, body := authzGet(t, cart, addr, "")
		require.Equal(t, http.StatusTooManyRequests, code, body)
		secs, err := strconv.Atoi(retry)
		require.NoError(t, err, "Retry-After %q", retry)
		require.Positive(t, secs)
		require.Equal(t, 1, decisions(f.gw("west/gw-0"), authzRateLimited))
	})
	t.Run("L4", func(t *testing.T) {
		f, addr := authzFixture(t, "", limited, egressTaggedEcho(t, "west"))
		for range 2 {
			got, err := flowFrom(authzCart, addr, "hi")
			require.NoError(t, err)
			require.Equal(t, "west hi", got)
		}
		got, _ := flowFrom(authzCart, addr, "hi")
		require.Empty(t, got)
		require.Equal(t, 1, decisions(f.gw("west/gw-0"), authzRateLimited))
	})
}

// eastConn is east's gateway's connection to west: a peer with east's
// valid certificate, for streams the test writes itself.
func eastConn(t *testing.T, f *egressFixture) *quic.Conn {
	t.Helper()
	var conn *quic.Conn
	require.Eventually(t, func() bool {
		conn = certsPeerConn(f.gw("east/gw-0"), "west")
		return conn != nil
	}, 10*time.Second, 5*time.Millisecond)
	return conn
}

// TestAuthzForeignClaimRefused: a peer with east's certificate claiming an
// identity of another trust domain (or a malformed one) is refused
// FORBIDDEN, on a flow's header and on an L7 request, and counted; its
// own identities still get through.
func TestAuthzForeignClaimRefused(t *testing.T) {
	f, addr := authzFixture(t, AppProtocolHTTP, authzPolicy, l7Backend(t, identityEcho))
	code, _, body := authzGet(t, l7From(t, authzCart), addr, "") // east connects to west
	require.Equal(t, http.StatusOK, code, body)
	conn := eastConn(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	west := f.gw("west/gw-0")
	for _, claim := range []string{"spiffe://north." + domain + "/ns/shop/sa/cart", "spiffe://east." + domain + "/ns/Shop"} {
		s, err := conn.OpenStreamSync(ctx)
		require.NoError(t, err)
		h := header("east")
		h.SourceIdentity = claim
		_, code := exchangeHeader(t, s, h)
		require.Equal(t, causewayv1.StreamCode_STREAM_CODE_FORBIDDEN, code, claim)
	}
	require.Equal(t, 2, decisions(west, authzBadIdentity))

	// An L7 stream carries requests; each claims its own identity.
	s, err := conn.OpenStreamSync(ctx)
	require.NoError(t, err)
	require.NoError(t, s.SetDeadline(time.Now().Add(10*time.Second)))
	h := header("east")
	h.AppProtocol = AppProtocolHTTP
	require.NoError(t, tunnel.WriteFrame(s, h))
	resp, err := tunnel.ReadResponse(s, 0)
	require.NoError(t, err)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_OK, resp.GetCode())
	br := bufio.NewReader(s)
	for _, c := range []struct {
		claim string
		want  int
	}{
		{"spiffe://north." + domain + "/ns/shop/sa/cart", http.StatusForbidden},
		{"spiffe://east." + domain + "/ns/shop/sa/cart", http.StatusOK},
		{"not a spiffe id", http.StatusForbidden},
	} {
		req := "GET /x HTTP/1.1\r\nHost: echo\r\n" + SourceIdentityHeader + ": " + c.claim + "\r\n\r\n"
		_, err := io.WriteString(s, req)
		require.NoError(t, err)
		r, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		require.Equal(t, c.want, r.StatusCode, "%s: %s", c.claim, body)
		if c.want == http.StatusOK {
			require.False(t, strings.Contains(string(body), "spiffe"), "backend saw %s", body)
		}
	}
	s.CancelRead(tunnel.CodeFlowReset)
	s.CancelWrite(tunnel.CodeFlowReset)
	require.Equal(t, 4, decisions(west, authzBadIdentity))
}
