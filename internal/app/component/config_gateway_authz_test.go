package component

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGatewayAuthorizationFile: the authorization file must load at start
// (for the gateway's cluster); a bad one fails the gateway file's load
// naming both files, the key and the line.
func TestGatewayAuthorizationFile(t *testing.T) {
	const gw = goodClient + "instance: gw-1\nlisten: 10.0.0.5:4433\n"
	dir := t.TempDir()
	good := filepath.Join(dir, "authz.yaml")
	require.NoError(t, os.WriteFile(good, []byte(`version: 1
defaultAction: Deny
identities:
- {cidr: 10.1.0.0/16, namespace: shop, serviceAccount: cart}
policies:
- metadata: {namespace: demo, name: echo-callers}
  spec:
    service: echo
    rules:
    - from: [{cluster: east, namespace: shop, serviceAccount: cart}]
rateLimits:
- metadata: {namespace: demo, name: echo-per-caller}
  spec: {service: echo, requests: 100}
`), 0o644))
	g, err := LoadGatewayConfig(writeConfig(t, gw+"authorization: "+good+"\n"))
	require.NoError(t, err)
	require.Equal(t, good, g.Authorization)
	gcfg := g.gatewayConfig()
	require.Nil(t, gcfg.Authorization, "set when the gateway runs, not by the file's load")

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("version: 1\npolicies:\n- metadata: {namespace: demo, name: a}\n  spec: {service: echo, rulez: []}\n"), 0o644))
	badCIDR := filepath.Join(dir, "cidr.yaml")
	require.NoError(t, os.WriteFile(badCIDR, []byte("version: 1\nidentities:\n- {cidr: 10.1.0.1/16, namespace: shop, serviceAccount: cart}\n"), 0o644))
	for file, want := range map[string]string{
		bad:                                "authorization: authorization file " + bad + ": line 4: policies[0] (demo/a).spec",
		badCIDR:                            "authorization: authorization file " + badCIDR + ": identities[0].cidr",
		filepath.Join(dir, "missing.yaml"): "authorization: read authorization file: open " + filepath.Join(dir, "missing.yaml"),
	} {
		path := writeConfig(t, gw+"authorization: "+file+"\n")
		_, err := LoadGatewayConfig(path)
		require.ErrorContains(t, err, "gateway config "+path+": "+want)
	}
}
