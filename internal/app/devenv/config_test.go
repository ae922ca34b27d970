package devenv

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseClusters(t *testing.T) {
	got, err := ParseClusters("east:us-east:us-east-1a,west,north:eu")
	require.NoError(t, err)
	require.Equal(t, []ClusterSpec{
		{Name: "east", Region: "us-east", Zone: "us-east-1a"},
		{Name: "west", Region: "region-west", Zone: "region-west-a"},
		{Name: "north", Region: "eu", Zone: "eu-a"},
	}, got)
	_, err = ParseClusters("")
	require.ErrorIs(t, err, ErrBadConfig)
	_, err = ParseClusters("a:b:c:d")
	require.ErrorIs(t, err, ErrBadConfig)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero value is valid", Config{}, ""},
		{"empty name", Config{Clusters: []ClusterSpec{{Name: "a"}, {Name: ""}}}, "cluster 2 has an empty name"},
		{"duplicate", Config{Clusters: []ClusterSpec{{Name: "a"}, {Name: "a"}}}, `"a" given twice`},
		{"not a label", Config{Clusters: []ClusterSpec{{Name: "A_b"}}}, "not a DNS label"},
		{"net not loopback", Config{Net: netip.MustParsePrefix("10.1.0.0/16")}, "inside 127.0.0.0/8"},
		{"net not /16", Config{Net: netip.MustParsePrefix("127.1.0.0/24")}, "must be a /16"},
		{"bad port", Config{DNSPort: 70000}, "--dns-port: port 70000 out of range"},
		{"etcd peer port", Config{EtcdPort: 65535}, "--etcd-port 65535: at most 65534, the peer port is --etcd-port + 1"},
		{"domain with a trailing dot", Config{Domain: "example.com."}, ""},
		{"domain with two trailing dots", Config{Domain: "example.com.."}, `--domain "example.com.": empty label`},
		{"domain with an empty label", Config{Domain: "example..com"}, "empty label"},
		{"domain only a dot", Config{Domain: "."}, ""}, // the default zone
		{"domain with a space", Config{Domain: "exa mple.com"}, `--domain "exa mple.com"`},
		{"domain label too long", Config{Domain: strings.Repeat("a", 64) + ".com"}, "is not a DNS name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrBadConfig)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestDomainTrailingDotDropped(t *testing.T) {
	require.Equal(t, "example.com", Config{Domain: "example.com."}.withDefaults().Domain)
	require.Equal(t, "clusterset.local", Config{}.withDefaults().Domain)
}

func TestAddressPlan(t *testing.T) {
	c := Config{Net: netip.MustParsePrefix("127.20.0.0/16")}.withDefaults()
	require.Equal(t, "127.20.0.1", c.etcdIP().String())
	require.Equal(t, "127.20.1.1", c.clusterIP(0).String())
	require.Equal(t, "127.20.3.128/25", c.vipRange(2).String())
	require.False(t, c.vipRange(0).Contains(c.clusterIP(0)), "VIPs never collide with component addresses")
}

// TestValidateRoutesFile: --routes must load before anything starts, and
// the gateways' files name it absolutely.
func TestValidateRoutesFile(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(good, []byte("version: 1\n"), 0o644))
	require.NoError(t, os.WriteFile(bad, []byte("version: 1\nhttpRoute: []\n"), 0o644))
	require.NoError(t, Config{RoutesFile: good}.Validate())
	err := Config{RoutesFile: bad}.Validate()
	require.ErrorIs(t, err, ErrBadConfig)
	require.ErrorContains(t, err, "--routes: routes file "+bad+`: line 2: unknown field "httpRoute"`)
	err = Config{RoutesFile: filepath.Join(dir, "missing.yaml")}.Validate()
	require.ErrorContains(t, err, "--routes: read routes file")

	t.Chdir(dir)
	require.Equal(t, good, Config{RoutesFile: "good.yaml"}.withDefaults().RoutesFile)
}
