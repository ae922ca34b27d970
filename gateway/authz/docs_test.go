package authz

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// docBlock returns the first ```yaml block after heading in
// docs/authorization.md.
func docBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/authorization.md")
	require.NoError(t, err)
	doc := string(b)
	i := strings.Index(doc, "\n"+heading+"\n")
	require.GreaterOrEqual(t, i, 0, "no heading %q", heading)
	_, rest, ok := strings.Cut(doc[i:], "```yaml\n")
	require.True(t, ok)
	block, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	return block
}

// docObjects decodes the Kubernetes example's objects.
func docObjects(t *testing.T) ([]*AuthorizationPolicy, []*RateLimitPolicy) {
	t.Helper()
	var authz []*AuthorizationPolicy
	var limits []*RateLimitPolicy
	for doc := range strings.SplitSeq(docBlock(t, "## Kubernetes example"), "\n---\n") {
		var head struct{ Kind string }
		require.NoError(t, yaml.Unmarshal([]byte(doc), &head))
		switch head.Kind {
		case KindAuthorizationPolicy:
			p := &AuthorizationPolicy{}
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), p))
			authz = append(authz, p)
		case KindRateLimitPolicy:
			p := &RateLimitPolicy{}
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), p))
			limits = append(limits, p)
		default:
			t.Fatalf("unexpected kind %q", head.Kind)
		}
	}
	return authz, limits
}

// TestDocExamples keeps the examples of docs/authorization.md valid and
// doing what the page says.
func TestDocExamples(t *testing.T) {
	authz, limits := docObjects(t)
	require.Len(t, authz, 2)
	require.Len(t, limits, 1)
	tbl := table(t, newClock(), Set{Policies: authz, RateLimits: limits})
	snap := tbl.Snapshot()
	require.True(t, snap.Decide(cart, 8080, frontend, get("/items")).Allowed)
	require.False(t, snap.Decide(cart, 8080, frontend, get("/admin/users")).Allowed)
	require.False(t, snap.Decide(cart, 8080, batch, nil).Allowed)
	for range 200 {
		require.True(t, snap.Limit(cart, 8080, frontend).Allowed)
	}
	require.False(t, snap.Limit(cart, 8080, frontend).Allowed)

	var overview AuthorizationPolicy
	require.NoError(t, yaml.UnmarshalStrict([]byte(docBlock(t, "## Policies")), &overview))
	require.NoError(t, overview.Validate(exported))

	st, err := ParseStatic([]byte(docBlock(t, "## Static example")), "east", domain)
	require.NoError(t, err)
	require.Len(t, st.Set.Policies, 1)
	require.Len(t, st.Set.RateLimits, 1)
}
