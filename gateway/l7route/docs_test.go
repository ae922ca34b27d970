package l7route

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// docBlock returns the first ```yaml block after heading in docs/traffic.md.
func docBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/traffic.md")
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

// TestDocExamples keeps the examples of docs/traffic.md valid.
func TestDocExamples(t *testing.T) {
	r, err := FromHTTPRoute(decodeHTTPRoute(t, docBlock(t, "## Kubernetes example")))
	require.NoError(t, err)
	require.NoError(t, r.Validate(catalog))

	routes, err := ParseStatic([]byte(docBlock(t, "## Static format")))
	require.NoError(t, err)
	require.Len(t, routes, 2)
}
