package devenv

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPrintGuide: one name per endpoint (FEDERATOR API, the three HTTP ports), the binary's
// real path in the commands, the state file export, aligned long regions.
func TestPrintGuide(t *testing.T) {
	st := &State{Etcd: "127.10.0.1:2379", Domain: "clusterset.local", File: "/tmp/causeway-dev-1/state.json",
		Clusters: []ClusterState{
			{Name: "east", Region: "region-east", DNS: "127.10.1.1:1053", Gateway: "127.10.1.1:4433", Federator: "127.10.1.1:7443",
				FederatorHTTP: "127.10.1.1:9090", HTTP: "127.10.1.1:9091", DNSHTTP: "127.10.1.1:9092",
				Dir: "/tmp/causeway-dev-1/clusters/east", AdminCert: "e.crt", AdminKey: "e.key", CAFile: "e-ca.crt", VIPs: map[string]string{"demo/echo": "127.10.1.129"}},
		},
		Services: []ServiceState{{Namespace: "demo", Name: "echo", Port: 8080, ExportedBy: []string{"east"}}},
	}
	var b bytes.Buffer
	PrintGuide(&b, st, "/src/causeway/bin/causeway")
	out := b.String()
	require.Contains(t, out, "is up: 1 cluster, etcd")
	require.Contains(t, out, "  CLUSTER  REGION       DNS                   GATEWAY (udp)         FEDERATOR API         HTTP (federator, gateway, DNS shim)\n")
	require.Contains(t, out, "  east     region-east  127.10.1.1:1053       127.10.1.1:4433       127.10.1.1:7443       127.10.1.1:9090, :9091, :9092\n")
	require.Contains(t, out, "curl -s http://127.10.1.1:9091/metrics")
	require.Contains(t, out, "/tmp/causeway-dev-1/clusters/east/{federator,gateway,dnsshim}.yaml")
	require.Contains(t, out, "export CAUSEWAY_STATE_FILE=/tmp/causeway-dev-1/state.json\n")
	require.Contains(t, out, "/src/causeway/bin/causeway clusters; /src/causeway/bin/causeway exports;")
	require.Contains(t, out, "/src/causeway/bin/causeway explain demo/echo --port 8080 --cluster east")
	require.Contains(t, out, "export CAUSEWAY_FEDERATOR=127.10.1.1:7443 CAUSEWAY_CERT=e.crt")
	require.NotContains(t, out, "ADMIN")
}

// TestPrintGuideL7: one command per L7 feature, from the cluster that does
// not export echo (so both exporters answer), with the routes file when
// --routes was given and how to give it when not.
func TestPrintGuideL7(t *testing.T) {
	ports := []PortState{{Name: "tcp", Port: 8080}, {Name: "http", Port: 8081, AppProtocol: "http"}}
	cluster := func(name string, n int) ClusterState {
		ip := fmt.Sprintf("127.10.%d.", n)
		return ClusterState{Name: name, Region: "r-" + name, DNS: ip + "1:1053", FederatorHTTP: ip + "1:9090", HTTP: ip + "1:9091",
			VIPs: map[string]string{"demo/echo": ip + "129", "demo/clock": ip + "130"}}
	}
	st := &State{Domain: "clusterset.local", Clusters: []ClusterState{cluster("east", 1), cluster("west", 2), cluster("north", 3)},
		Services: []ServiceState{
			{Namespace: "demo", Name: "echo", Port: 8080, Ports: ports, ExportedBy: []string{"east", "west"}},
			{Namespace: "demo", Name: "clock", Port: 8080, Ports: ports, ExportedBy: []string{"north"}},
		}}
	var b bytes.Buffer
	PrintGuide(&b, st, "causeway")
	out := b.String()
	require.Contains(t, out, "  echo.demo ports 8080 (L4) and 8081 (http, L7), exported by [east west]\n")
	require.Contains(t, out, "L7: port 8081 (appProtocol http) balances and routes each request on its own; from cluster north:\n")
	require.Contains(t, out, "  curl -s 'http://127.10.3.129:8081/[1-10]'   # one connection, answered by east and west\n")
	require.Contains(t, out, "  curl -s 'http://127.10.3.129:8080/[1-10]'   # L4 port: one connection, one cluster\n")
	require.Contains(t, out, "restart with --routes FILE (docs/traffic.md)")
	require.Contains(t, out, "  curl -s http://127.10.3.1:9091/metrics | grep causeway_gateway_requests_total\n")
	require.Contains(t, out, "  causeway explain demo/echo --port 8081 --cluster north\n")

	st.RoutesFile = "/home/me/routes.yaml"
	b.Reset()
	PrintGuide(&b, st, "causeway")
	require.Contains(t, b.String(), "  curl -s -H 'x-canary: 1' http://127.10.3.129:8081/   # routed by /home/me/routes.yaml (edits load within a second)\n")
	require.NotContains(t, b.String(), "restart with --routes")
}
