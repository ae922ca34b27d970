package gateway

import (
	"context"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway/tunnel"
	"github.com/stretchr/testify/require"
)

// TestEgressResponseDeadline: a peer that accepts the connection but never
// answers a stream costs the egress side one HeaderTimeout, after which the
// stream is reset (PROTOCOL_ERROR) and the flow may move on.
func TestEgressResponseDeadline(t *testing.T) {
	const headerTimeout = 400 * time.Millisecond
	f := newFixture(t, func(c *Config) {
		if c.Cluster == "east" {
			c.HeaderTimeout = headerTimeout
		}
	})
	westCert, err := f.clusters["west"].ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	mute := certsRogueServer(t, certs.ServerConfig(certs.TLSOptions{Source: certs.NewStaticSource(westCert),
		Bundles: f.allBundles(), Authorize: certs.AuthorizeMember("gateway"), NextProtos: []string{tunnel.ALPN}}))
	eastCert, err := f.clusters["east"].ca.NewLeafKeyPair("gateway", time.Hour, time.Now())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := certsDial(ctx, mute, certs.ClientConfig(certs.TLSOptions{Source: certs.NewStaticSource(eastCert),
		Bundles: f.allBundles(), NextProtos: []string{tunnel.ALPN}}))
	require.NoError(t, err)
	defer conn.CloseWithError(0, "")

	east := f.clusters["east"].gw
	target := egressTarget{key: catalog.ServiceKey{Namespace: "demo", Name: "echo"}, port: 8080}
	start := time.Now()
	s, err := east.openStreamOn(ctx, context.Background(), conn, "west", target, flowSource{addr: "127.0.0.1:1"})
	took := time.Since(start)
	require.Nil(t, s)
	require.Error(t, err)
	require.Equal(t, causewayv1.StreamCode_STREAM_CODE_UNSPECIFIED, refusalCode(err), "a timeout is no refusal")
	require.GreaterOrEqual(t, took, headerTimeout-20*time.Millisecond)
	require.Less(t, took, headerTimeout+time.Second)
	var ne interface{ Timeout() bool }
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "err: %v", err)
	require.NoError(t, conn.Context().Err(), "one silent stream must not close the connection")
	t.Logf("gave up on a silent peer after %v (HeaderTimeout %v)", took.Round(time.Millisecond), headerTimeout)
}
