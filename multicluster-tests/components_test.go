package multicluster

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestComponentsEndToEnd runs two clusters as separate federator, gateway
// and DNS shim processes configured from files: west's shim answers the
// clusterset name with west's clusterset IP, and a GET there is carried
// by the gateways to east's backend; the operator verbs reach the
// federator with an admin certificate from `causeway certs admin`.
func TestComponentsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six causeway processes")
	}
	s := startPSet(t, 83, 1, []pclusterSpec{
		{name: "east", region: "us-east", zone: "us-east-1a", exports: []string{"echo"}},
		{name: "west", region: "us-west", zone: "us-west-1a"},
	})
	west := s.clusters["west"]
	vip := s.resolveVIP(west, "echo.demo.svc.clusterset.local", 30*time.Second)
	require.True(t, strings.HasPrefix(vip, "127.83.2."), "west's clusterset IP %s is not from west's range", vip)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + net.JoinHostPort(vip, "8080") + "/"
	var got string
	require.Eventually(t, func() bool {
		var err error
		got, err = get(context.Background(), client, url)
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "GET %s never succeeded", url)
	require.Equal(t, "east", got)

	out := mustCLI(t, nil, append([]string{"status"}, s.adminArgs(west)...)...)
	require.Contains(t, out, "2 clusters, 2 gateways", "both gateways' announcements should be in the federation")
}
