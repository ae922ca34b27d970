package component

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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

	const base = "cluster: east\netcd: {endpoints: [x:1]}\ncaDir: /ca\n"
	for _, tc := range []struct{ name, body, want string }{
		{"unknown field", goodFederator + "colour: blue\n", `line 7: unknown field "colour"`},
		{"typo", goodFederator + "regoin: us-east\n", `line 7: unknown field "regoin" (did you mean region?)`},
		{"nested typo", "cluster: east\netcd: {endpoints: [x:1], dialTimeot: 1s}\n", `line 2: etcd: unknown field "dialTimeot" (did you mean dialTimeout?)`},
		{"bad yaml", "version: [", "line 1: did not find expected node content"},
		{"empty file", "", "cluster: required"},
		{"bad cluster", "cluster: South_1\n", `cluster: "South_1" is not a DNS label (lowercase letters, digits and '-'`},
		{"no etcd", "cluster: east\n", "etcd.endpoints: required"},
		{"no ca", "cluster: east\netcd: {endpoints: [x:1]}\n", "caDir: required, the cluster's CA directory (create it with `causeway certs init`)"},
		{"no source", base, "exports: set exactly one of static and kubernetes"},
		{"no vips", base + "exports: {static: /e}\nsigning: {joinTokensFile: /t}\n", "vipRanges: required"},
		{"bad vips", base + "vipRanges: [\"127.61.20.300/25\"]\nexports: {static: /e}\nsigning: {joinTokensFile: /t}\n",
			`vipRanges[0]: "127.61.20.300/25" is not a CIDR prefix like 10.200.0.0/16`},
		{"vips not a list", base + "vipRanges: 10.0.0.0/8\n", `line 4: vipRanges: want a list, got "10.0.0.0/8"`},
		{"no signing", base + "vipRanges: [10.0.0.0/8]\nexports: {static: /e}\n", "signing: set joinTokensFile or tokenReview"},
		{"bad listen", goodFederator + "listen: {grpc: nowhere}\n", `listen.grpc: want host:port or :port, like 127.0.0.1:7443, got "nowhere"`},
		{"listen port out of range", goodFederator + "listen: {grpc: \"127.0.0.1:99999\"}\n", `listen.grpc: "127.0.0.1:99999": port not in 0-65535`},
		{"bad http", goodFederator + "listen: {http: \"9090\"}\n", `listen.http: want host:port or :port`},
		{"bad deprecated admin", goodFederator + "listen: {admin: \"9090\"}\n", `listen.admin: want host:port or :port`},
		{"admin and http", goodFederator + "listen: {admin: \":9090\", http: \":9093\"}\n",
			"listen.admin and listen.http are both set: listen.admin is the deprecated name of listen.http, keep only listen.http"},
		{"ttl not whole seconds", goodFederator + "leaderTTL: 2500ms\n", "leaderTTL: want whole seconds, at least 2s, got 2.5s"},
		{"ttl bad unit", goodFederator + "leaderTTL: 10x\n", `line 7: leaderTTL: want a duration like 10s (units ms, s, m, h), got "10x"`},
		{"ttl a number", goodFederator + "leaderTTL: 10\n", "line 7: leaderTTL: want a duration with a unit, like 10s, got 10"},
		{"negative dial timeout", strings.Replace(goodFederator, "etcd: {", "etcd: {dialTimeout: -1s, ", 1), "etcd.dialTimeout: want a positive duration, got -1s"},
		{"review without kube", base + "vipRanges: [10.0.0.0/8]\nexports: {static: /e}\nsigning: {tokenReview: {accounts: {a/b: gateway}}}\n", "needs exports.kubernetes"},
		{"bad egress ports", base + "exports: {kubernetes: {gatewayService: a/b, egressPorts: 9-1}}\nsigning: {joinTokensFile: /t}\n",
			`exports.kubernetes.egressPorts: want min-max within 1-65535, like 30000-32767, got "9-1"`},
		{"bad gateway service", base + "exports: {kubernetes: {gatewayService: gw}}\nsigning: {joinTokensFile: /t}\n",
			`exports.kubernetes.gatewayService: want namespace/name of the gateway's Service, got "gw"`},
		{"bad domain", goodFederator + "domain: Cluster Set\n", `domain: "Cluster Set" is not a domain name (lowercase letters, digits, '-' and '.', like clusterset.local)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.body)
			_, err := LoadFederatorConfig(p)
			require.Error(t, err)
			require.Equal(t, "federator config "+p+": ", err.Error()[:min(len(err.Error()), len(p)+19)], "the error names the file")
			require.Contains(t, err.Error(), tc.want)
			requireUserTerms(t, strings.ReplaceAll(err.Error(), p, "FILE"))
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
	require.Equal(t, DefaultGatewayHTTP, g.HTTP)

	d, err := LoadDNSShimConfig(writeConfig(t, goodClient+"ttl: 30s\n"))
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, d.TTL.Duration)
	require.Equal(t, DefaultDNSListen, d.Listen)

	const gw = goodClient + "instance: gw-1\nlisten: 10.0.0.5:4433\n"
	for _, tc := range []struct{ name, body, want string }{
		{"no federator", "cluster: east\n", "federator: required"},
		{"bad federator", "cluster: east\nfederator: x\nbootstrap: y:1\ncaFile: a\ntokenFile: b\n", `federator: want host:port or :port, like 127.0.0.1:7443, got "x"`},
		{"no advertise", goodClient + "instance: gw-1\n", "advertise: required when listen (:4433) names no host"},
		{"bad advertise", goodClient + "instance: gw-1\nadvertise: [\":4433\"]\n", `advertise[0]: want host:port with a host peers can reach, got ":4433"`},
		{"bad instance", goodClient + "instance: GW_1\nlisten: 10.0.0.5:4433\n", `instance: "GW_1" is not a DNS label`},
		{"unknown field", gw + "port: 1\n", `line 8: unknown field "port"`},
		{"key twice", gw + "instance: gw-2\n", "line 8: instance: given twice (lines 6 and 8)"},
		{"limits typo", gw + "limits: {maxAtempts: 2}\n", `line 8: limits: unknown field "maxAtempts" (did you mean maxAttempts?)`},
		{"bad egress mode", gw + "egress: {mode: adresses}\n", `egress.mode: want addresses or ports, got "adresses"`},
		{"keep-alive above idle", gw + "limits: {keepAlivePeriod: 5s, idleTimeout: 1s}\n", "limits.keepAlivePeriod (5s) must be below limits.idleTimeout (1s)"},
		{"negative limit", gw + "limits: {dialTimeout: -1s}\n", "limits.dialTimeout: want a positive duration (or leave it out for the default), got -1s"},
		{"negative attempts", gw + "limits: {maxAttempts: -2}\n", "limits.maxAttempts: want a whole number 1-1048576 (or leave it out for the default), got -2"},
		{"header timeout a word", gw + "limits: {headerTimeout: five}\n", `line 8: limits.headerTimeout: want a duration like 10s (units ms, s, m, h), got "five"`},
		{"header size a word", gw + "limits: {maxHeaderSize: big}\n", `line 8: limits.maxHeaderSize: want a whole number, got "big"`},
		{"admin and http", gw + "admin: \":9091\"\nhttp: \":9093\"\n", "admin and http are both set: admin is the deprecated name of http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.body)
			_, err := LoadGatewayConfig(p)
			require.Error(t, err)
			require.Contains(t, err.Error(), "gateway config "+p+": ")
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "limits: gateway config")
			requireUserTerms(t, strings.ReplaceAll(err.Error(), p, "FILE"))
		})
	}
	for _, tc := range []struct{ name, body, want string }{
		{"negative ttl", goodClient + "ttl: -5s\n", "ttl: want whole seconds (DNS TTLs are in seconds), like 5s, got -5s"},
		{"sub-second ttl", goodClient + "ttl: 500ms\n", "ttl: want whole seconds (DNS TTLs are in seconds), like 5s, got 500ms"},
		{"ttl a number", goodClient + "ttl: 5\n", "line 6: ttl: want a duration with a unit, like 5s, got 5"},
		{"bad domain", goodClient + "domain: \"Cluster Set\"\n", `domain: "Cluster Set" is not a domain name`},
		{"empty", "", "cluster: required"},
	} {
		t.Run("dnsshim "+tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.body)
			_, err := LoadDNSShimConfig(p)
			require.Error(t, err)
			require.Contains(t, err.Error(), "dnsshim config "+p+": ")
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), `component "x"`)
			requireUserTerms(t, strings.ReplaceAll(err.Error(), p, "FILE"))
		})
	}
}

// requireUserTerms fails if err speaks of the decoder's or Go's internals.
func requireUserTerms(t *testing.T, msg string) {
	t.Helper()
	for _, internal := range []string{"JSON", "json", "Go struct", "of type", "ParseAddr", "ParsePrefix", "unmarshal", "yaml:", "SPIFFE", "spiffe"} {
		require.NotContains(t, msg, internal)
	}
}

func TestHTTPListenerRename(t *testing.T) {
	f, err := LoadFederatorConfig(writeConfig(t, goodFederator+"listen: {http: \"127.0.0.1:9093\"}\n"))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9093", f.Listen.HTTP)
	require.Empty(t, f.Deprecations)

	f, err = LoadFederatorConfig(writeConfig(t, goodFederator+"listen: {admin: \"127.0.0.1:9094\"}\n"))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9094", f.Listen.HTTP, "the deprecated key still works")
	require.Len(t, f.Deprecations, 1)
	require.Contains(t, f.Deprecations[0], "listen.admin is deprecated, rename it listen.http")

	f, err = LoadFederatorConfig(writeConfig(t, goodFederator))
	require.NoError(t, err)
	require.Equal(t, DefaultFederatorHTTP, f.Listen.HTTP)

	g, err := LoadGatewayConfig(writeConfig(t, goodClient+"listen: 10.0.0.5:4433\ninstance: gw-1\nadmin: \":9095\"\n"))
	require.NoError(t, err)
	require.Equal(t, ":9095", g.HTTP)
	require.Contains(t, g.Deprecations[0], "admin is deprecated, rename it http")

	d, err := LoadDNSShimConfig(writeConfig(t, goodClient+"http: \":9096\"\n"))
	require.NoError(t, err)
	require.Equal(t, ":9096", d.HTTP)
	require.Empty(t, d.Deprecations)

	// The WARN is logged once at start.
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	logDeprecations(log, g.Deprecations)
	require.Equal(t, 1, strings.Count(buf.String(), "level=WARN"))
	require.Contains(t, buf.String(), "rename it http")
}

func TestRunFederatorNamesMissingCADir(t *testing.T) {
	c, err := LoadFederatorConfig(writeConfig(t, strings.Replace(goodFederator, "caDir: /ca", "caDir: "+filepath.Join(t.TempDir(), "noca"), 1)))
	require.NoError(t, err)
	err = RunFederator(t.Context(), c, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	require.Contains(t, err.Error(), "caDir "+c.CADir+": no CA there")
	require.Contains(t, err.Error(), "create it with `causeway certs init --cluster east --out "+c.CADir+"`")
}
