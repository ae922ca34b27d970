package static

import (
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	good := `
version: 1
services:
- namespace: demo
  name: echo
  ports: [{name: http, port: 8080}]
  endpoints:
  - {address: 10.0.0.1, targetPorts: {http: 31080}}
  - {address: 10.0.0.2, zone: z2, ready: false}
- namespace: demo
  name: db
  type: Headless
  routing: local-direct
  clusterIP: 10.96.0.7
  ports: [{name: pg, port: 5432, protocol: tcp}]
`
	recs, err := Parse([]byte(good), "east", "z1")
	require.NoError(t, err)
	require.Len(t, recs, 2)
	echo := recs[0]
	require.Equal(t, "east", echo.GetCluster())
	require.Equal(t, causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP, echo.GetType())
	require.Equal(t, map[string]uint32{"z1": 1}, echo.GetReadyPerZone())
	require.Equal(t, uint32(31080), echo.GetEndpoints()[0].GetTargetPorts()["http"])
	require.False(t, echo.GetEndpoints()[1].GetReady())
	require.Equal(t, causewayv1.ServiceType_SERVICE_TYPE_HEADLESS, recs[1].GetType())
	require.Equal(t, causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT, recs[1].GetRouting())
	require.Equal(t, "10.96.0.7", recs[1].GetClusterIp())

	tests := []struct{ name, doc, want string }{
		{"not yaml", "version: [", "parse static exports"},
		{"wrong version", "version: 2\nservices: []", "version 2, want 1"},
		{"unknown field", "version: 1\nservices:\n- namespace: demo\n  name: a\n  prots: []", "prots"},
		{"bad namespace", "version: 1\nservices:\n- {namespace: Demo, name: a, ports: [{port: 1}]}", `services[0] (Demo/a): namespace "Demo"`},
		{"no ports", "version: 1\nservices:\n- {namespace: demo, name: a}", "no ports"},
		{"port zero", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{port: 0}]}", "ports[0]: port 0 out of range"},
		{"unnamed of several", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{port: 1}, {name: b, port: 2}]}", "a name is required"},
		{"bad protocol", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{port: 1, protocol: ICMP}]}", `protocol "ICMP"`},
		{"bad type", "version: 1\nservices:\n- {namespace: demo, name: a, type: ExternalName, ports: [{port: 1}]}", `type "ExternalName"`},
		{"bad address", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{port: 1}], endpoints: [{address: host.example}]}", "endpoints[0]: address"},
		{"target port names no port", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{name: http, port: 1}], endpoints: [{address: 10.0.0.1, targetPorts: {grpc: 2}}]}", `"grpc" names no port`},
		{"local-direct without clusterIP", "version: 1\nservices:\n- {namespace: demo, name: a, routing: local-direct, ports: [{port: 1}]}", "needs a clusterIP"},
		{"bad clusterIP", "version: 1\nservices:\n- {namespace: demo, name: a, clusterIP: nope, ports: [{port: 1}]}", `clusterIP "nope"`},
		{"duplicate service", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{port: 1}]}\n- {namespace: demo, name: a, ports: [{port: 1}]}", "demo/a listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "east", "z1")
			require.ErrorContains(t, err, tc.want)
		})
	}
}
