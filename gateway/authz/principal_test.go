package authz

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePrincipal(t *testing.T) {
	valid := []struct {
		in   string
		want Principal
	}{
		{"spiffe://north.clusterset.local/ns/web/sa/frontend", who("north", "web", "frontend")},
		{"spiffe://north.clusterset.local/ns/web/sa/front.end-1", who("north", "web", "front.end-1")},
		{"spiffe://north.clusterset.local/anonymous", who("north", "", "")},
		{"spiffe://a.b.c/ns/x/sa/y", Principal{Cluster: "a", Domain: "b.c", Namespace: "x", ServiceAccount: "y"}},
	}
	for _, tc := range valid {
		t.Run("valid "+tc.in, func(t *testing.T) {
			p, err := ParsePrincipal(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, p)
			require.Equal(t, tc.in, p.String())
			require.Equal(t, tc.want.Namespace == "", p.IsAnonymous())
		})
	}
	invalid := map[string]string{
		"empty":                "",
		"not spiffe":           "https://north.clusterset.local/ns/web/sa/frontend",
		"component identity":   "spiffe://north.clusterset.local/gateway",
		"no domain":            "spiffe://north/ns/web/sa/frontend",
		"bad cluster":          "spiffe://-north.clusterset.local/ns/web/sa/x",
		"ns only":              "spiffe://north.clusterset.local/ns/web",
		"sa first":             "spiffe://north.clusterset.local/sa/x/ns/web",
		"extra segment":        "spiffe://north.clusterset.local/ns/web/sa/x/y",
		"uppercase namespace":  "spiffe://north.clusterset.local/ns/Web/sa/x",
		"underscore sa":        "spiffe://north.clusterset.local/ns/web/sa/a_b",
		"dot dot":              "spiffe://north.clusterset.local/ns/../sa/x",
		"query":                "spiffe://north.clusterset.local/ns/web/sa/x?y",
		"trailing slash":       "spiffe://north.clusterset.local/ns/web/sa/x/",
		"anonymous with extra": "spiffe://north.clusterset.local/anonymous/x",
		"long namespace":       "spiffe://north.clusterset.local/ns/" + strings.Repeat("a", 64) + "/sa/x",
		"long sa":              "spiffe://north.clusterset.local/ns/web/sa/" + strings.Repeat("a.", 130) + "a",
		"huge":                 "spiffe://north.clusterset.local/ns/web/sa/" + strings.Repeat("a", 5000),
		"nul":                  "spiffe://north.clusterset.local/ns/web/sa/x\x00",
	}
	for name, in := range invalid {
		t.Run("invalid "+name, func(t *testing.T) {
			_, err := ParsePrincipal(in)
			require.ErrorIs(t, err, ErrInvalidPrincipal)
		})
	}
}

func TestNewPrincipal(t *testing.T) {
	p, err := NewPrincipal("north", domain, "web", "frontend")
	require.NoError(t, err)
	require.Equal(t, "spiffe://north.clusterset.local/ns/web/sa/frontend", p.String())
	require.Equal(t, "north.clusterset.local", p.TrustDomain())

	a, err := AnonymousPrincipal("north", domain)
	require.NoError(t, err)
	require.True(t, a.IsAnonymous())
	require.Equal(t, "spiffe://north.clusterset.local/anonymous", a.String())

	for _, tc := range [][4]string{
		{"North", domain, "web", "x"}, {"north", "", "web", "x"}, {"north", domain, "web", ""},
		{"north", domain, "", "x"}, {"north", "Bad Domain", "web", "x"},
	} {
		_, err := NewPrincipal(tc[0], tc[1], tc[2], tc[3])
		require.ErrorIs(t, err, ErrInvalidPrincipal, "%q", tc)
	}
	require.True(t, Principal{}.IsZero())
	require.Empty(t, Principal{}.String())
}

func TestAcceptClaim(t *testing.T) {
	for _, tc := range []struct {
		name, peer, claim string
		want              Principal
		err               error
	}{
		{"own workload", "north.clusterset.local", "spiffe://north.clusterset.local/ns/web/sa/frontend", who("north", "web", "frontend"), nil},
		{"own anonymous", "north.clusterset.local", "spiffe://north.clusterset.local/anonymous", who("north", "", ""), nil},
		{"no claim is anonymous", "north.clusterset.local", "", who("north", "", ""), nil},
		{"other cluster", "east.clusterset.local", "spiffe://west.clusterset.local/ns/web/sa/frontend", Principal{}, ErrForeignTrustDomain},
		{"other cluster anonymous", "east.clusterset.local", "spiffe://west.clusterset.local/anonymous", Principal{}, ErrForeignTrustDomain},
		{"other domain", "east.clusterset.local", "spiffe://east.evil.local/ns/web/sa/x", Principal{}, ErrForeignTrustDomain},
		{"look-alike cluster", "east.clusterset.local", "spiffe://eastern.clusterset.local/ns/web/sa/x", Principal{}, ErrForeignTrustDomain},
		{"suffix trick", "east.clusterset.local", "spiffe://east.clusterset.local.evil/ns/web/sa/x", Principal{}, ErrForeignTrustDomain},
		{"malformed claim", "east.clusterset.local", "spiffe://east.clusterset.local/gateway", Principal{}, ErrInvalidPrincipal},
		{"garbage claim", "east.clusterset.local", "\xff\xfe", Principal{}, ErrInvalidPrincipal},
		{"bad peer", "", "spiffe://east.clusterset.local/ns/web/sa/x", Principal{}, ErrInvalidPrincipal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := AcceptClaim(tc.peer, tc.claim)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.True(t, p.IsZero())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, p)
		})
	}
}

// FuzzAcceptClaim: whatever the claim, an accepted principal is in the
// peer's trust domain and round-trips.
func FuzzAcceptClaim(f *testing.F) {
	f.Add("spiffe://north.clusterset.local/ns/web/sa/frontend")
	f.Add("spiffe://north.clusterset.local/anonymous")
	f.Add("spiffe://west.clusterset.local/ns/a/sa/b")
	f.Fuzz(func(t *testing.T, claim string) {
		p, err := AcceptClaim("north.clusterset.local", claim)
		if err != nil {
			return
		}
		require.Equal(t, "north.clusterset.local", p.TrustDomain())
		if claim != "" {
			require.Equal(t, claim, p.String())
		}
	})
}
