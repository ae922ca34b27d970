package devenv

import (
	"bytes"
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
	require.Contains(t, out, "/src/causeway/bin/causeway explain demo/echo --cluster east")
	require.Contains(t, out, "export CAUSEWAY_FEDERATOR=127.10.1.1:7443 CAUSEWAY_CERT=e.crt")
	require.NotContains(t, out, "ADMIN")
}
