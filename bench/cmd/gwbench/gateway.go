package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // profiles on -pprof
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/gateway"
)

// topology is the fixed catalog both gateway processes share: cluster a
// imports every service on vip; cluster b exports it with one endpoint.
// A service named by -app-protocol has that appProtocol on its port (an
// L7 port: the egress gateway routes each request on its own); the others
// are L4.
type topology struct {
	gw       map[string]string // cluster -> gateway UDP address
	vip      string
	services []service
	appProto map[string]string // service name -> its port's appProtocol ("" is L4)
}

// service is "name=port:host:targetport".
type service struct {
	name   string
	port   uint32
	host   string
	target uint32
}

type serviceFlags []service

func (s *serviceFlags) String() string { return fmt.Sprint(*s) }

func (s *serviceFlags) Set(v string) error {
	name, rest, ok1 := strings.Cut(v, "=")
	port, hostport, ok2 := strings.Cut(rest, ":")
	host, target, err := net.SplitHostPort(hostport)
	if !ok1 || !ok2 || err != nil {
		return fmt.Errorf("service %q: want name=port:host:targetport", v)
	}
	p, err1 := strconv.ParseUint(port, 10, 16)
	t, err2 := strconv.ParseUint(target, 10, 16)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("service %q: %w", v, err)
	}
	*s = append(*s, service{name: name, port: uint32(p), host: host, target: uint32(t)})
	return nil
}

// appProtoFlags is "name=appProtocol" per service, e.g. web=http: that
// service's port is served at L7 (gateway.IsL7).
type appProtoFlags map[string]string

func (a appProtoFlags) String() string { return fmt.Sprint(map[string]string(a)) }

func (a appProtoFlags) Set(v string) error {
	name, proto, ok := strings.Cut(v, "=")
	if !ok || name == "" || !gateway.IsL7(proto) {
		return fmt.Errorf("app-protocol %q: want name=http|kubernetes.io/h2c|grpc", v)
	}
	a[name] = proto
	return nil
}

func runGateway(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	dir := fs.String("dir", "", "directory written by gwbench certs (required)")
	cluster := fs.String("cluster", "", "this gateway's cluster: a (egress) or b (ingress)")
	gwA := fs.String("gw-a", "", "UDP address of cluster a's gateway")
	gwB := fs.String("gw-b", "", "UDP address of cluster b's gateway")
	vip := fs.String("vip", "", "cluster a's import address of every service")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this address")
	var svcs serviceFlags
	fs.Var(&svcs, "service", "name=port:host:targetport exported by b (repeatable)")
	appProto := appProtoFlags{}
	fs.Var(appProto, "app-protocol", "name=appProtocol: serve that -service's port at L7, e.g. web=http (repeatable)")
	_ = fs.Parse(args)
	topo := topology{gw: map[string]string{"a": *gwA, "b": *gwB}, vip: *vip, services: svcs, appProto: appProto}
	for name := range appProto {
		if !slices.ContainsFunc(svcs, func(s service) bool { return s.name == name }) {
			return fmt.Errorf("-app-protocol names %q, which no -service defines", name)
		}
	}
	if *dir == "" || topo.gw[*cluster] == "" || *gwA == "" || *gwB == "" || *vip == "" || len(svcs) == 0 {
		return fmt.Errorf("need -dir, -cluster a|b, -gw-a, -gw-b, -vip and -service")
	}
	entries := map[string]*causewayv1.Entry{}
	var own *certs.CA
	for _, c := range clusters {
		ca, err := loadCA(*dir, c)
		if err != nil {
			return fmt.Errorf("load CA of %s: %w", c, err)
		}
		if c == *cluster {
			own = ca
		}
		topo.addCluster(entries, c, ca)
	}
	topo.addServices(entries)
	feed := catalog.NewFeed()
	feed.Publish(catalog.NewView(entries, 1))

	leaf, err := own.NewLeafKeyPair("gateway", 24*time.Hour, time.Now())
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gw, err := gateway.New(gateway.Config{Cluster: *cluster, Logger: log,
		// The load generator is one client address standing for many
		// clients: the idle test holds 10,000 flows from it.
		MaxFlowsPerSource: 1 << 20}, feed, certs.NewStaticSource(leaf))
	if err != nil {
		return err
	}
	udpAddr, err := net.ResolveUDPAddr("udp", topo.gw[*cluster])
	if err != nil {
		return err
	}
	udp, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return err
	}
	if *pprofAddr != "" {
		srv := &http.Server{Addr: *pprofAddr, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.ListenAndServe() }()
		defer srv.Close()
	}
	go func() {
		<-gw.Ready()
		fmt.Fprintf(os.Stderr, "gwbench gateway %s ready on %s\n", *cluster, udp.LocalAddr())
	}()
	return gw.Run(ctx, udp, gateway.DefaultListen)
}

func (t topology) addCluster(e map[string]*causewayv1.Entry, c string, ca *certs.CA) {
	td := certs.TrustDomainFor(c, domain)
	put(e, &causewayv1.Entry{Key: "clusters/" + c, Record: &causewayv1.Entry_Cluster{
		Cluster: &causewayv1.ClusterRecord{Name: c, Region: "region-" + c, Zone: "zone-" + c, TrustDomain: td}}})
	put(e, &causewayv1.Entry{Key: "bundles/" + c, Record: &causewayv1.Entry_Bundle{
		Bundle: &causewayv1.TrustBundle{Cluster: c, TrustDomain: td, X509Authorities: [][]byte{ca.Cert.Raw}}}})
	put(e, &causewayv1.Entry{Key: "gateways/" + c + "/gw-0", Record: &causewayv1.Entry_Gateway{
		Gateway: &causewayv1.GatewayRecord{Cluster: c, Instance: "gw-0", Addresses: []string{t.gw[c]}}}})
}

// put adds en to e under its key. Keys are the catalog's relative keys
// (federator/store's without the prefix; the harness links no etcd code).
func put(e map[string]*causewayv1.Entry, en *causewayv1.Entry) { e[en.Key] = en }

// addServices makes b export and a import every service.
func (t topology) addServices(e map[string]*causewayv1.Entry) {
	for _, s := range t.services {
		ports := []*causewayv1.ServicePort{{Name: s.name, Port: s.port, Protocol: causewayv1.Protocol_PROTOCOL_TCP,
			AppProtocol: t.appProto[s.name]}}
		put(e, &causewayv1.Entry{Key: "exports/bench/" + s.name + "/b", Record: &causewayv1.Entry_Export{Export: &causewayv1.ExportRecord{
			Namespace: "bench", Name: s.name, Cluster: "b",
			Type:  causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			Ports: ports, ReadyPerZone: map[string]uint32{"zone-b": 1},
			Endpoints: []*causewayv1.Endpoint{{Address: s.host, Ready: true, Zone: "zone-b",
				TargetPorts: map[string]uint32{s.name: s.target}}}}}})
		put(e, &causewayv1.Entry{Key: "imports/a/bench/" + s.name, Record: &causewayv1.Entry_Import{Import: &causewayv1.ImportRecord{
			Namespace: "bench", Name: s.name, Cluster: "a",
			Type:  causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
			Ports: ports, Ips: []string{t.vip}, Clusters: []string{"b"}}}})
	}
}
