package certs_test

import (
	"crypto/x509"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/causeway-mesh/causeway/certs"
)

func TestParseID(t *testing.T) {
	valid := []struct {
		in   string
		want certs.ID
	}{
		{"spiffe://east.clusterset.local/gateway", certs.ID{TrustDomain: "east.clusterset.local", Path: "/gateway"}},
		{"spiffe://td/a/b/c", certs.ID{TrustDomain: "td", Path: "/a/b/c"}},
		{"spiffe://a-b_c.9/Upper-Case_1.x", certs.ID{TrustDomain: "a-b_c.9", Path: "/Upper-Case_1.x"}},
		{"spiffe://td/...", certs.ID{TrustDomain: "td", Path: "/..."}},
		{"spiffe://td/.hidden", certs.ID{TrustDomain: "td", Path: "/.hidden"}},
	}
	for _, tc := range valid {
		t.Run("valid "+tc.in, func(t *testing.T) {
			id, err := certs.ParseID(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, id)
			require.Equal(t, tc.in, id.String())
		})
	}

	invalid := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"no scheme", "east.clusterset.local/gateway"},
		{"wrong scheme", "https://east.clusterset.local/gateway"},
		{"uppercase scheme", "SPIFFE://east.clusterset.local/gateway"},
		{"opaque", "spiffe:east/gateway"},
		{"empty trust domain", "spiffe:///gateway"},
		{"no path", "spiffe://east.clusterset.local"},
		{"root path", "spiffe://east.clusterset.local/"},
		{"trailing slash", "spiffe://east.clusterset.local/gateway/"},
		{"empty segment", "spiffe://td/a//b"},
		{"dot segment", "spiffe://td/a/./b"},
		{"dotdot segment", "spiffe://td/a/../b"},
		{"only dot", "spiffe://td/."},
		{"only dotdot", "spiffe://td/.."},
		{"uppercase trust domain", "spiffe://East.clusterset.local/gateway"},
		{"port", "spiffe://td:8443/gateway"},
		{"userinfo", "spiffe://user@td/gateway"},
		{"query", "spiffe://td/gateway?x=1"},
		{"fragment", "spiffe://td/gateway#frag"},
		{"percent encoding", "spiffe://td/gate%20way"},
		{"space", "spiffe://td/gate way"},
		{"unicode trust domain", "spiffe://tést/gateway"},
		{"bad path char", "spiffe://td/gate*way"},
		{"too long", "spiffe://td/" + strings.Repeat("a", 2100)},
		{"trust domain too long", "spiffe://" + strings.Repeat("a", 256) + "/x"},
	}
	for _, tc := range invalid {
		t.Run("invalid "+tc.name, func(t *testing.T) {
			_, err := certs.ParseID(tc.in)
			require.ErrorIs(t, err, certs.ErrInvalidID)
		})
	}
}

func TestNewID(t *testing.T) {
	id, err := certs.NewID("east.clusterset.local", "gateway")
	require.NoError(t, err)
	require.Equal(t, certs.ID{TrustDomain: "east.clusterset.local", Path: "/gateway"}, id)
	require.Equal(t, "spiffe://east.clusterset.local/gateway", id.String())

	for _, tc := range []struct{ td, component string }{
		{"", "gateway"},
		{"east.clusterset.local", ""},
		{"east.clusterset.local", "/gateway"},
		{"east.clusterset.local", "../gateway"},
		{"East", "gateway"},
	} {
		_, err := certs.NewID(tc.td, tc.component)
		require.ErrorIs(t, err, certs.ErrInvalidID, "td=%q component=%q", tc.td, tc.component)
	}
}

func TestIDFromCertificate(t *testing.T) {
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		require.NoError(t, err)
		return u
	}
	tests := []struct {
		name    string
		cert    *x509.Certificate
		want    certs.ID
		wantErr bool
	}{
		{"nil", nil, certs.ID{}, true},
		{"no URI", &x509.Certificate{}, certs.ID{}, true},
		{"two URIs", &x509.Certificate{URIs: []*url.URL{
			mustURL("spiffe://td/a"), mustURL("spiffe://td/b"),
		}}, certs.ID{}, true},
		{"nil URI", &x509.Certificate{URIs: []*url.URL{nil}}, certs.ID{}, true},
		{"invalid URI", &x509.Certificate{URIs: []*url.URL{mustURL("https://td/a")}}, certs.ID{}, true},
		{"percent-encoded path", &x509.Certificate{URIs: []*url.URL{mustURL("spiffe://td/%61")}}, certs.ID{}, true},
		{"valid", &x509.Certificate{URIs: []*url.URL{mustURL("spiffe://td/a")}}, certs.ID{TrustDomain: "td", Path: "/a"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := certs.IDFromCertificate(tc.cert)
			if tc.wantErr {
				require.ErrorIs(t, err, certs.ErrInvalidID)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, id)
		})
	}
}

func TestTrustDomainFor(t *testing.T) {
	tests := []struct{ cluster, domain, want string }{
		{"east", "clusterset.local", "east.clusterset.local"},
		{"West", "ClusterSet.Local.", "west.clusterset.local"},
		{"north", ".example.com", "north.example.com"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, certs.TrustDomainFor(tc.cluster, tc.domain))
	}
}
