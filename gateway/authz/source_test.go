package authz

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStaticResolverMostSpecific(t *testing.T) {
	r, err := NewStaticResolver("north", domain, []Identity{
		{CIDR: "10.0.0.0/8", Namespace: "default", ServiceAccount: "default"},
		{CIDR: "10.1.0.0/16", Namespace: "web", ServiceAccount: "frontend"},
		{CIDR: "10.1.2.3/32", Namespace: "web", ServiceAccount: "admin"},
		{CIDR: "fd00::/64", Namespace: "batch", ServiceAccount: "jobs"},
		{CIDR: "fd00::1/128", Namespace: "batch", ServiceAccount: "one"},
	})
	require.NoError(t, err)
	for _, tc := range []struct {
		addr string
		want Principal
	}{
		{"10.9.9.9", who("north", "default", "default")},
		{"10.1.9.9", who("north", "web", "frontend")},
		{"10.1.2.3", who("north", "web", "admin")},
		{"10.1.2.4", who("north", "web", "frontend")},
		{"::ffff:10.1.2.3", who("north", "web", "admin")},
		{"192.168.1.1", who("north", "", "")},
		{"fd00::2", who("north", "batch", "jobs")},
		{"fd00::1", who("north", "batch", "one")},
		{"fd00::1%eth0", who("north", "batch", "one")},
		{"fd01::1", who("north", "", "")},
		{"::1", who("north", "", "")},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			require.Equal(t, tc.want, r.Resolve(netip.MustParseAddr(tc.addr)))
		})
	}
	require.Equal(t, who("north", "", ""), r.Resolve(netip.Addr{}), "the zero address is anonymous")
	require.Equal(t, who("north", "", ""), r.Anonymous())

	empty, err := NewStaticResolver("north", domain, nil)
	require.NoError(t, err)
	require.True(t, empty.Resolve(netip.MustParseAddr("10.1.2.3")).IsAnonymous())
}

func TestStaticResolverErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  []Identity
		want string
	}{
		{"missing cidr", []Identity{{Namespace: "web", ServiceAccount: "x"}}, "identities[0].cidr: required"},
		{"bad cidr", []Identity{{CIDR: "10.0.0.0/33", Namespace: "web", ServiceAccount: "x"}}, "identities[0].cidr: \"10.0.0.0/33\" is not an address range"},
		{"address only", []Identity{{CIDR: "10.0.0.1", Namespace: "web", ServiceAccount: "x"}}, "is not an address range"},
		{"host bits", []Identity{{CIDR: "10.1.2.3/16", Namespace: "web", ServiceAccount: "x"}}, "did you mean 10.1.0.0/16?"},
		{"mapped", []Identity{{CIDR: "::ffff:10.0.0.0/104", Namespace: "web", ServiceAccount: "x"}}, "write the IPv4 range"},
		{"zone", []Identity{{CIDR: "fe80::%eth0/64", Namespace: "web", ServiceAccount: "x"}}, "identities[0].cidr"},
		{"same range twice", []Identity{
			{CIDR: "10.1.0.0/16", Namespace: "web", ServiceAccount: "x"},
			{CIDR: "10.1.0.0/16", Namespace: "web", ServiceAccount: "y"},
		}, "identities[1].cidr: 10.1.0.0/16 is also identities[0]"},
		{"bad namespace", []Identity{{CIDR: "10.0.0.0/8", Namespace: "Web", ServiceAccount: "x"}}, "identities[0]: namespace \"Web\""},
		{"missing sa", []Identity{{CIDR: "10.0.0.0/8", Namespace: "web"}}, "identities[0]: namespace and serviceAccount are both set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewStaticResolver("north", domain, tc.ids)
			require.ErrorContains(t, err, tc.want)
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
		})
	}
	_, err := NewStaticResolver("North", domain, nil)
	require.ErrorIs(t, err, ErrInvalidPrincipal)
}
