package gateway

import (
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/stretchr/testify/require"
)

func TestDesiredEgressModes(t *testing.T) {
	tcp := causewayv1.Protocol_PROTOCOL_TCP
	imp := &causewayv1.ImportRecord{
		Cluster: "west", Namespace: "demo", Name: "echo", Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
		Ips:   []string{"10.96.0.10"},
		Ports: []*causewayv1.ServicePort{{Name: "http", Port: 8080, Protocol: tcp}, {Name: "dns", Port: 53, Protocol: causewayv1.Protocol_PROTOCOL_UDP}},
		EgressPorts: []*causewayv1.EgressPort{
			{Protocol: tcp, Port: 8080, EgressPort: 30001},
			{Protocol: causewayv1.Protocol_PROTOCOL_UDP, Port: 53, EgressPort: 30002},
			{Protocol: tcp, Port: 9090}, // not assigned yet
		},
	}
	headless := &causewayv1.ImportRecord{Cluster: "west", Namespace: "demo", Name: "db", Type: causewayv1.ServiceType_SERVICE_TYPE_HEADLESS,
		EgressPorts: []*causewayv1.EgressPort{{Protocol: tcp, Port: 5432, EgressPort: 30003}}}
	v := catalog.NewView(map[string]*causewayv1.Entry{
		"imports/west/demo/echo": {Key: "imports/west/demo/echo", Record: &causewayv1.Entry_Import{Import: imp}},
		"imports/west/demo/db":   {Key: "imports/west/demo/db", Record: &causewayv1.Entry_Import{Import: headless}},
	}, 1)
	echo := egressTarget{key: catalog.ServiceKey{Namespace: "demo", Name: "echo"}, port: 8080}
	for _, tc := range []struct {
		mode, bind string
		want       map[string]egressTarget
	}{
		{"", "", map[string]egressTarget{"10.96.0.10:8080": echo}},
		{EgressAddresses, "ignored", map[string]egressTarget{"10.96.0.10:8080": echo}},
		{EgressPorts, "", map[string]egressTarget{":30001": echo}},
		{EgressPorts, "10.0.0.7", map[string]egressTarget{"10.0.0.7:30001": echo}},
	} {
		require.Equal(t, tc.want, desiredEgress(v, "west", tc.mode, tc.bind), "mode %q bind %q", tc.mode, tc.bind)
	}
	require.Error(t, Config{Cluster: "west", EgressMode: "vip"}.Validate())
}
