package component

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

const goodFederator = `cluster: east
etcd: {endpoints: ["127.0.0.1:2379"]}
caDir: /ca
vipRanges: ["127.1.0.0/16"]
exports: {static: /exports.yaml}
signing: {joinTokensFile: /tokens.yaml}
`

func TestLoadFederatorConfig(t *testing.T) {
	c, err := LoadFederatorConfig(writeConfig(t, goodFederator))
	require.NoError(t, err)
	require.Equal(t, "clusterset.local", c.Domain)
	require.Equal(t, "east.clusterset.local", c.TrustDomain())
	require.Equal(t, DefaultFederatorGRPC, c.Listen.GRPC)
	require.Equal(t, 5*time.Second, c.Etcd.DialTimeout.Duration)

	k, err := LoadFederatorConfig(writeConfig(t, `cluster: east
leaderTTL: 4s
etcd: {endpoints: ["127.0.0.1:2379"]}
caDir: /ca
exports: {kubernetes: {gatewayService: causeway/causeway-gateway}}
signing: {tokenReview: {accounts: {"causeway/gw": gateway}}}
`))
	require.NoError(t, err)
	require.Equal(t, "30000-32767", k.Exports.Kubernetes.EgressPorts)
	require.Equal(t, []string{"causeway"}, k.Signing.TokenReview.Audiences)
	require.Equal(t, 4*time.Second, k.LeaderTTL.Duration)

	for _, tc := range []struct{ name, body, want string }{
		{"unknown field", goodFederator + "colour: blue\n", `unknown field "colour"`},
		{"bad yaml", "cluster: [", "config"},
		{"bad cluster", "cluster: East_1\n", `cluster "East_1" is not a DNS label`},
		{"no etcd", "cluster: east\n", "etcd.endpoints"},
		{"no ca", "cluster: east\netcd: {endpoints: [x:1]}\n", "caDir is required"},
		{"no source", "cluster: east\netcd: {endpoints: [x:1]}\ncaDir: /ca\n", "exactly one of static and kubernetes"},
		{"no vips", "cluster: east\netcd: {endpoints: [x:1]}\ncaDir: /ca\nexports: {static: /e}\nsigning: {joinTokensFile: /t}\n", "vipRanges: required"},
		{"bad vips", goodFederator + "vipRanges: [nonsense]\n", "vipRanges"},
		{"no signing", "cluster: east\netcd: {endpoints: [x:1]}\ncaDir: /ca\nvipRanges: [10.0.0.0/8]\nexports: {static: /e}\n", "signing: set joinTokensFile or tokenReview"},
		{"bad listen", goodFederator + "listen: {grpc: nowhere}\n", "listen.grpc"},
		{"bad ttl", goodFederator + "leaderTTL: 1500ms\n", "leaderTTL"},
		{"review without kube", "cluster: east\netcd: {endpoints: [x:1]}\ncaDir: /ca\nvipRanges: [10.0.0.0/8]\nexports: {static: /e}\nsigning: {tokenReview: {accounts: {a/b: gateway}}}\n", "needs exports.kubernetes"},
		{"bad egress ports", "cluster: east\netcd: {endpoints: [x:1]}\ncaDir: /ca\nexports: {kubernetes: {gatewayService: a/b, egressPorts: 9-1}}\nsigning: {joinTokensFile: /t}\n", "egressPorts"},
		{"bad gateway service", "cluster: east\netcd: {endpoints: [x:1]}\ncaDir: /ca\nexports: {kubernetes: {gatewayService: gw}}\nsigning: {joinTokensFile: /t}\n", "gatewayService"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			_, err := LoadFederatorConfig(writeConfig(t, body))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	_, err = LoadFederatorConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "read config")
}

const goodClient = `cluster: east
federator: 10.0.0.1:7443
bootstrap: 10.0.0.1:7444
caFile: /ca/bundle.crt
tokenFile: /token
`

func TestLoadGatewayAndDNSConfig(t *testing.T) {
	g, err := LoadGatewayConfig(writeConfig(t, goodClient+"listen: 10.0.0.5:4433\ninstance: gw-1\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.5:4433"}, g.Advertise)
	require.Equal(t, DefaultGatewayAdmin, g.Admin)

	d, err := LoadDNSShimConfig(writeConfig(t, goodClient+"ttl: 30s\n"))
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, d.TTL.Duration)
	require.Equal(t, DefaultDNSListen, d.Listen)

	for _, tc := range []struct{ name, body, want string }{
		{"no federator", "cluster: east\n", "federator is required"},
		{"bad federator", "cluster: east\nfederator: x\nbootstrap: y:1\ncaFile: a\ntokenFile: b\n", "federator:"},
		{"no advertise", goodClient + "instance: gw-1\n", "advertise: required"},
		{"bad advertise", goodClient + "instance: gw-1\nadvertise: [\":4433\"]\n", "advertise"},
		{"bad instance", goodClient + "instance: GW_1\nlisten: 10.0.0.5:4433\n", "instance"},
		{"unknown field", goodClient + "instance: gw-1\nlisten: 10.0.0.5:4433\nport: 1\n", `unknown field "port"`},
		{"bad egress mode", goodClient + "instance: gw-1\nlisten: 10.0.0.5:4433\negress: {mode: vip}\n", "egress mode"},
		{"bad limits", goodClient + "instance: gw-1\nlisten: 10.0.0.5:4433\nlimits: {keepAlivePeriod: 5s, idleTimeout: 1s}\n", "limits:"},
		{"negative limit", goodClient + "instance: gw-1\nlisten: 10.0.0.5:4433\nlimits: {dialTimeout: -1s}\n", "limits:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadGatewayConfig(writeConfig(t, tc.body))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	_, err = LoadDNSShimConfig(writeConfig(t, goodClient+"ttl: -1s\n"))
	require.ErrorContains(t, err, "negative")
}
