package federator

import (
	"strings"
	"testing"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestConflicts(t *testing.T) {
	tcp, udp := causewayv1.Protocol_PROTOCOL_TCP, causewayv1.Protocol_PROTOCOL_UDP
	at := func(s int64) *timestamppb.Timestamp { return timestamppb.New(time.Unix(s, 0)) }
	port := func(name string, p causewayv1.Protocol, n uint32) *causewayv1.ServicePort {
		return &causewayv1.ServicePort{Name: name, Protocol: p, Port: n}
	}
	exp := func(cluster string, created int64, mod func(*causewayv1.ExportRecord), ports ...*causewayv1.ServicePort) *causewayv1.ExportRecord {
		x := &causewayv1.ExportRecord{Namespace: "demo", Name: "echo", Cluster: cluster, Created: at(created),
			Type: causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP, SessionAffinity: "None", Ports: ports}
		if mod != nil {
			mod(x)
		}
		return x
	}
	headless := func(x *causewayv1.ExportRecord) { x.Type = causewayv1.ServiceType_SERVICE_TYPE_HEADLESS }
	clientIP := func(timeout uint32) func(*causewayv1.ExportRecord) {
		return func(x *causewayv1.ExportRecord) {
			x.SessionAffinity, x.SessionAffinityTimeoutSeconds = "ClientIP", timeout
		}
	}
	tests := []struct {
		name        string
		exports     []*causewayv1.ExportRecord
		wantReason  string
		wantLosers  []string
		wantWinner  string
		wantMessage []string
	}{
		{name: "single export", exports: []*causewayv1.ExportRecord{exp("east", 1, nil, port("http", tcp, 80))},
			wantReason: ReasonNoConflicts},
		{name: "identical exports", exports: []*causewayv1.ExportRecord{
			exp("east", 1, nil, port("http", tcp, 80)), exp("west", 2, nil, port("http", tcp, 80))},
			wantReason: ReasonNoConflicts},
		{name: "disjoint ports merge without conflict", exports: []*causewayv1.ExportRecord{
			exp("east", 1, nil, port("http", tcp, 80)), exp("west", 2, nil, port("metrics", tcp, 9090))},
			wantReason: ReasonNoConflicts},
		{name: "same name, other port: the younger loses", exports: []*causewayv1.ExportRecord{
			exp("west", 2, nil, port("http", tcp, 8080)), exp("east", 1, nil, port("http", tcp, 80))},
			wantReason: ReasonPortConflict, wantLosers: []string{"west"}, wantWinner: "east",
			wantMessage: []string{`port "http"`, "cluster west", "TCP/8080", "cluster east", "TCP/80"}},
		{name: "same protocol+port, other name", exports: []*causewayv1.ExportRecord{
			exp("east", 1, nil, port("http", tcp, 80)), exp("west", 2, nil, port("web", tcp, 80))},
			wantReason: ReasonPortConflict, wantLosers: []string{"west"}, wantWinner: "east"},
		{name: "same port number, other protocol: no conflict", exports: []*causewayv1.ExportRecord{
			exp("east", 1, nil, port("dns", tcp, 53)), exp("west", 2, nil, port("dns-udp", udp, 53))},
			wantReason: ReasonNoConflicts},
		{name: "tie on creation time broken by cluster name", exports: []*causewayv1.ExportRecord{
			exp("west", 1, headless, port("http", tcp, 80)), exp("east", 1, nil, port("http", tcp, 80))},
			wantReason: ReasonTypeConflict, wantLosers: []string{"west"}, wantWinner: "east",
			wantMessage: []string{"type", "Headless", "ClusterSetIP", "cluster east"}},
		{name: "several reasons are comma-joined in a fixed order", exports: []*causewayv1.ExportRecord{
			exp("east", 1, nil, port("http", tcp, 80)),
			exp("west", 2, func(x *causewayv1.ExportRecord) { headless(x); x.SessionAffinity = "ClientIP" }, port("http", tcp, 81))},
			wantReason: "PortConflict,TypeConflict,SessionAffinityConflict", wantLosers: []string{"west", "west", "west"}, wantWinner: "east"},
		{name: "affinity timeout", exports: []*causewayv1.ExportRecord{
			exp("east", 1, clientIP(10800), port("http", tcp, 80)), exp("west", 2, clientIP(60), port("http", tcp, 80))},
			wantReason: ReasonSessionAffinityConfigConflict, wantLosers: []string{"west"}, wantWinner: "east",
			wantMessage: []string{"timeoutSeconds", "60", "10800"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := Conflicts(tc.exports)
			reason, msg := ConflictCondition(cs)
			require.Equal(t, tc.wantReason, reason)
			var losers []string
			for _, c := range cs {
				losers = append(losers, c.Cluster)
				require.Equal(t, tc.wantWinner, c.Winner)
			}
			require.Equal(t, tc.wantLosers, losers)
			for _, w := range tc.wantMessage {
				require.True(t, strings.Contains(msg, w), "message %q lacks %q", msg, w)
			}
		})
	}
}
