package static

import (
	"strings"
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/stretchr/testify/require"
)

// Over 80 lines: a table of cases, each a few lines.
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

	// One row per bad input of the operator findings ("Static exports"),
	// with the exact message a user reads.
	const svc = "version: 1\nservices:\n- namespace: demo\n  name: echo\n"
	tests := []struct{ name, doc, want string }{
		{"yaml syntax", "version: 1\nservices:\n- namespace: demo\n  name: echo\n  ports: [ {port: 8080\n",
			"did not find expected ',' or '}'"},
		{"not yaml", "version: [", "line 1: did not find expected node content"},
		{"unknown field", svc + "  prots: []", `line 5: services[0] (demo/echo): unknown field "prots" (did you mean ports?)`},
		{"unknown top-level field", "version: 1\nservice: []\n", `line 2: unknown field "service" (did you mean services?)`},
		{"port a word", svc + "  ports: [{port: eighty}]", `line 5: services[0] (demo/echo).ports[0].port: want a port number 1-65535, got "eighty"`},
		{"port negative", svc + "  ports: [{port: -1}]", `line 5: services[0] (demo/echo).ports[0].port: want a port number 1-65535, got -1`},
		{"port too large", svc + "  ports: [{port: 70000}]", `services[0] (demo/echo).ports[0].port: want a port number 1-65535, got 70000`},
		{"port zero", svc + "  ports: [{port: 0}]", `services[0] (demo/echo).ports[0].port: want a port number 1-65535, got 0`},
		{"ports not a list", svc + "  ports: 8080", `line 5: services[0] (demo/echo).ports: want a list, got 8080`},
		{"ready not a bool", svc + "  ports: [{port: 1}]\n  endpoints: [{address: 10.0.0.1, ready: maybe}]",
			`line 6: services[0] (demo/echo).endpoints[0].ready: want true or false, got "maybe"`},
		{"target port a word", svc + "  ports: [{name: http, port: 1}]\n  endpoints: [{address: 10.0.0.1, targetPorts: {http: x}}]",
			`line 6: services[0] (demo/echo).endpoints[0].targetPorts[http]: want a port number 1-65535, got "x"`},
		{"duplicate key", svc + "  name: again\n", `line 5: services[0] (demo/again).name: given twice (lines 4 and 5)`},
		{"bad namespace", "version: 1\nservices:\n- {namespace: Bad_ns, name: echo, ports: [{port: 1}]}",
			`services[0] (Bad_ns/echo).namespace: "Bad_ns" is not a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit)`},
		{"bad name", "version: 1\nservices:\n- {namespace: demo, name: -echo-, ports: [{port: 1}]}",
			`services[0] (demo/-echo-).name: "-echo-" is not a DNS label`},
		{"long name", "version: 1\nservices:\n- {namespace: demo, name: " + strings.Repeat("a", 64) + ", ports: [{port: 1}]}",
			`.name: "` + strings.Repeat("a", 64) + `" is 64 characters long, a DNS label has at most 63`},
		{"no name", "version: 1\nservices:\n- {namespace: demo, ports: [{port: 1}]}", `services[0] (demo/).name: required, a DNS label`},
		{"no version", "services: []\n", "version: required (this build reads version 1)"},
		{"empty file", "", "version: required (this build reads version 1)"},
		{"wrong version", "version: 2\nservices: []", "version: 2 is not supported, want 1"},
		{"no ports", "version: 1\nservices:\n- {namespace: demo, name: a}", "services[0] (demo/a).ports: required, at least one"},
		{"unnamed of several", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{port: 1}, {name: b, port: 2}]}",
			"services[0] (demo/a).ports[0].name: required when there are several ports"},
		{"bad protocol", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{port: 1, protocol: HTTP}]}",
			`services[0] (demo/a).ports[0].protocol: want TCP, UDP or SCTP, got "HTTP"`},
		{"bad type", "version: 1\nservices:\n- {namespace: demo, name: a, type: Foo, ports: [{port: 1}]}",
			`services[0] (demo/a).type: want ClusterSetIP or Headless, got "Foo"`},
		{"bad routing", "version: 1\nservices:\n- {namespace: demo, name: a, routing: bar, ports: [{port: 1}]}",
			`services[0] (demo/a).routing: want gateway or local-direct, got "bar"`},
		{"address a host name", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{port: 1}], endpoints: [{address: echo.example.com}]}",
			`services[0] (demo/a).endpoints[0].address: want an IP address like 10.0.3.17, got "echo.example.com"`},
		{"no address", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{port: 1}], endpoints: [{zone: z}]}",
			`services[0] (demo/a).endpoints[0].address: required, the backend's IP address`},
		{"target port names no port", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{name: http, port: 1}], endpoints: [{address: 10.0.0.1, targetPorts: {grpc: 2}}]}",
			`services[0] (demo/a).endpoints[0].targetPorts[grpc]: "grpc" names no port of the service`},
		{"local-direct without clusterIP", "version: 1\nservices:\n- {namespace: demo, name: a, routing: local-direct, ports: [{port: 1}]}",
			"services[0] (demo/a).clusterIP: required with routing local-direct"},
		{"bad clusterIP", "version: 1\nservices:\n- {namespace: demo, name: a, clusterIP: nope, ports: [{port: 1}]}",
			`services[0] (demo/a).clusterIP: want an IP address like 10.96.0.7, got "nope"`},
		{"duplicate service", "version: 1\nservices:\n- {namespace: demo, name: a, ports: [{port: 1}]}\n- {namespace: demo, name: a, ports: [{port: 1}]}",
			"services[1] (demo/a): listed twice (also services[0])"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "east", "z1")
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			requireUserTerms(t, err)
		})
	}
}

// requireUserTerms fails if err speaks of the decoder's or Go's internals.
func requireUserTerms(t *testing.T, err error) {
	t.Helper()
	for _, internal := range []string{"JSON", "json", "Go struct", "uint32", "int64", "ParseAddr", "ParsePrefix", "unmarshal", "yaml:"} {
		require.NotContains(t, err.Error(), internal)
	}
}
