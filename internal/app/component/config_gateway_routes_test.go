package component

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGatewayRoutesFile: the routes file must load at start; a bad one
// fails the gateway file's load naming both files, the key and the line.
func TestGatewayRoutesFile(t *testing.T) {
	const gw = goodClient + "instance: gw-1\nlisten: 10.0.0.5:4433\n"
	dir := t.TempDir()
	good := filepath.Join(dir, "routes.yaml")
	require.NoError(t, os.WriteFile(good, []byte(`version: 1
httpRoutes:
- metadata: {namespace: demo, name: echo}
  spec:
    parentRefs: [{kind: Service, name: echo, port: 8081}]
    rules:
    - backendRefs: [{group: causeway.dev, kind: Cluster, name: west}]
`), 0o644))
	g, err := LoadGatewayConfig(writeConfig(t, gw+"routes: "+good+"\n"))
	require.NoError(t, err)
	require.Equal(t, good, g.Routes)

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("version: 1\nhttpRoutes:\n- metadata: {namespace: demo, name: r}\n  spec: {rules: [{backendRef: []}]}\n"), 0o644))
	for file, want := range map[string]string{
		bad:                                "routes: routes file " + bad + `: line 4: httpRoutes[0] (demo/r).spec.rules[0]: unknown field "backendRef"`,
		filepath.Join(dir, "missing.yaml"): "routes: read routes file: open " + filepath.Join(dir, "missing.yaml"),
	} {
		path := writeConfig(t, gw+"routes: "+file+"\n")
		_, err := LoadGatewayConfig(path)
		require.ErrorContains(t, err, "gateway config "+path+": "+want)
	}
}
