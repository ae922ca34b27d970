package gateway

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/stretchr/testify/require"
)

func TestEndpointPickerOrder(t *testing.T) {
	var p endpointPicker
	key := catalog.ServiceKey{Namespace: "demo", Name: "echo"}
	addrs := []string{"a", "b", "c"}
	now := time.Now()
	// Round robin: each call starts one further.
	require.Equal(t, []string{"a", "b", "c"}, p.order(key, addrs, now))
	require.Equal(t, []string{"b", "c", "a"}, p.order(key, addrs, now))
	// A failed endpoint goes last while its back-off lasts...
	// (the rotation runs over the healthy ones only, so they share evenly)...
	p.result("c", net.ErrClosed, now)
	require.Equal(t, []string{"a", "b", "c"}, p.order(key, addrs, now)) // 3rd call
	require.Equal(t, []string{"b", "a", "c"}, p.order(key, addrs, now))
	// ...and is back in rotation after it, or after a successful dial.
	require.Equal(t, []string{"b", "c", "a"}, p.order(key, addrs, now.Add(endpointFailBackoff))) // 5th call
	p.result("a", net.ErrClosed, now)
	p.result("a", nil, now)
	require.Equal(t, []string{"b", "a", "c"}, p.order(key, addrs, now)) // 6th call: only c is in back-off
	// Positions of services no longer exported are dropped.
	p.forget(func(catalog.ServiceKey) bool { return false })
	require.Empty(t, p.next)
}

// countingBackend accepts and counts connections until the test ends.
func countingBackend(t *testing.T) (port uint32, accepted *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	accepted = &atomic.Int64{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	return uint32(ln.Addr().(*net.TCPAddr).Port), accepted
}

// TestDialLocalBalancesAndSkipsFailed dials a service with two live
// endpoints and one refusing connections: every dial succeeds, the live
// ones share the load evenly, and the dead one is tried once per back-off.
func TestDialLocalBalancesAndSkipsFailed(t *testing.T) {
	p1, n1 := countingBackend(t)
	p2, n2 := countingBackend(t)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadPort := uint32(dead.Addr().(*net.TCPAddr).Port)
	require.NoError(t, dead.Close())

	ep := func(port uint32, ready bool) *causewayv1.Endpoint {
		return &causewayv1.Endpoint{Address: "127.0.0.1", Ready: ready, TargetPorts: map[string]uint32{"http": port}}
	}
	x := &causewayv1.ExportRecord{Namespace: "demo", Name: "echo", Cluster: "west",
		Ports:     []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: causewayv1.Protocol_PROTOCOL_TCP}},
		Endpoints: []*causewayv1.Endpoint{ep(p1, true), ep(deadPort, true), ep(p2, true), ep(p1+1, false)}}
	g := &Gateway{cfg: Config{Cluster: "west", DialTimeout: 2 * time.Second}.withDefaults(),
		metrics: newMetrics(nil), log: slog.New(slog.DiscardHandler)}

	const dials = 40
	for i := range dials {
		c, err := g.dialLocal(context.Background(), x, 8080)
		require.NoError(t, err, "dial %d", i)
		_ = c.Close()
	}
	require.Eventually(t, func() bool { return n1.Load()+n2.Load() == dials }, 5*time.Second, 5*time.Millisecond)
	require.InDelta(t, dials/2, n1.Load(), 2, "round robin")
	require.InDelta(t, dials/2, n2.Load(), 2, "round robin")
	deadAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(deadPort)))
	g.endpoints.mu.Lock()
	_, failed := g.endpoints.failed[deadAddr]
	g.endpoints.mu.Unlock()
	require.True(t, failed, "the refusing endpoint is in back-off")

	// Refusals that let the egress side move on.
	_, err = g.dialLocal(context.Background(), x, 9999)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_NOT_EXPORTED, refusalCode(err))
	x.Endpoints = []*causewayv1.Endpoint{ep(p1, false)}
	_, err = g.dialLocal(context.Background(), x, 8080)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_NO_ENDPOINTS, refusalCode(err))
	x.Endpoints = []*causewayv1.Endpoint{ep(deadPort, true)}
	_, err = g.dialLocal(context.Background(), x, 8080)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_DIAL_FAILED, refusalCode(err))
	require.NotContains(t, err.Error(), strconv.Itoa(int(deadPort)), "no dial detail in the refusal")
}
