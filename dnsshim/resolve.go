package dnsshim

import (
	"net"
	"net/netip"
	"strings"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/miekg/dns"
)

// result is an answer before it becomes a message: records, or NXDOMAIN.
// An empty answer without nxdomain is NODATA.
type result struct {
	answer, extra []dns.RR
	nxdomain      bool
}

var nxdomain = result{nxdomain: true}

func (s *Server) ttl() uint32 { return uint32(s.cfg.TTL.Seconds()) }

func (s *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl()}
}

// soa is the zone's SOA; its minimum is the negative-caching TTL.
func (s *Server) soa(v *catalog.View) *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: s.cfg.Zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: s.ttl()},
		Ns:      "ns.dns." + s.cfg.Zone,
		Mbox:    "hostmaster." + s.cfg.Zone,
		Serial:  uint32(v.Revision),
		Refresh: 7200, Retry: 1800, Expire: 86400,
		Minttl: s.ttl(),
	}
}

// request is one question being answered (modelled on CoreDNS's
// request.Request): the view it is answered from, the owner name as asked,
// the type, the socket it arrived on and the name's labels below the zone,
// lower-cased.
type request struct {
	view   *catalog.View
	name   string
	qtype  uint16
	local  net.Addr
	labels []string
}

// newRequest parses q (inside the zone) for resolving from v.
func (s *Server) newRequest(v *catalog.View, q dns.Question, local net.Addr) request {
	rel := strings.TrimSuffix(strings.ToLower(dns.Fqdn(q.Name)), s.cfg.Zone)
	rel = strings.TrimSuffix(rel, ".")
	r := request{view: v, name: q.Name, qtype: q.Qtype, local: local}
	if rel != "" {
		r.labels = strings.Split(rel, ".")
	}
	return r
}

// serviceRequest is a request about one imported service: names
// <svc>.<ns>.svc.<zone> and below. labels are those below "svc".
type serviceRequest struct {
	request
	key      catalog.ServiceKey
	imp      *causewayv1.ImportRecord
	svcName  string // <svc>.<ns>.svc.<zone>, the ClusterSetIP SRV target
	headless bool
}

// resolve answers q (inside the zone) from v. Owner names keep the
// question's case; matching is case-insensitive.
func (s *Server) resolve(v *catalog.View, q dns.Question, local net.Addr) result {
	r := s.newRequest(v, q, local)
	labels := r.labels
	switch {
	case len(labels) == 0: // apex
		switch r.qtype {
		case dns.TypeSOA:
			soa := s.soa(v)
			soa.Hdr.Name = r.name
			return result{answer: []dns.RR{soa}}
		case dns.TypeNS:
			return result{answer: []dns.RR{&dns.NS{Hdr: s.hdr(r.name, dns.TypeNS), Ns: "ns.dns." + s.cfg.Zone}}}
		}
		return result{}
	case len(labels) == 1 && labels[0] == "dns-version":
		if r.qtype == dns.TypeTXT {
			return result{answer: []dns.RR{&dns.TXT{Hdr: s.hdr(r.name, dns.TypeTXT), Txt: []string{"1.0.0"}}}}
		}
		return result{}
	case len(labels) == 2 && labels[0] == "ns" && labels[1] == "dns":
		return s.nameServer(r)
	case len(labels) == 2 && labels[1] == "dns":
		return nxdomain
	}
	if labels[len(labels)-1] != "svc" {
		return nxdomain
	}
	r.labels = labels[:len(labels)-1]
	return s.resolveSvc(r)
}

// resolveSvc answers a name below svc.<zone>; r.labels are those below
// "svc".
func (s *Server) resolveSvc(r request) result {
	labels := r.labels
	imports := r.view.Imports(s.cfg.Cluster)
	switch len(labels) {
	case 0, 1: // svc.<zone>, <ns>.svc.<zone>: exist while a service below does
		for k, imp := range imports {
			if len(labels) == 1 && k.Namespace != labels[0] {
				continue
			}
			if imp.GetType() != causewayv1.ServiceType_SERVICE_TYPE_HEADLESS || len(readyEndpoints(r.view, k)) > 0 {
				return result{}
			}
		}
		return nxdomain
	}
	key := catalog.ServiceKey{Namespace: labels[len(labels)-1], Name: labels[len(labels)-2]}
	imp, ok := imports[key]
	if !ok {
		return nxdomain
	}
	sr := serviceRequest{request: r, key: key, imp: imp, svcName: key.Name + "." + key.Namespace + ".svc." + s.cfg.Zone,
		headless: imp.GetType() == causewayv1.ServiceType_SERVICE_TYPE_HEADLESS}
	switch len(labels) {
	case 2:
		return s.service(sr)
	case 4:
		if strings.HasPrefix(labels[0], "_") && strings.HasPrefix(labels[1], "_") {
			return s.portSRV(sr, labels[0][1:], labels[1][1:])
		}
		if sr.headless {
			return s.pod(sr, labels[1], labels[0])
		}
	}
	// Includes <clusterid>.<svc>.<ns>.svc: never served (KEP-1645).
	return nxdomain
}

// nameServer answers ns.dns.<zone> with the address the query came in on.
func (s *Server) nameServer(r request) result {
	if r.local == nil {
		return result{}
	}
	ap, err := netip.ParseAddrPort(r.local.String())
	if err != nil || ap.Addr().IsUnspecified() { // a wildcard socket: no address to give
		return result{}
	}
	return s.addrRRs(r.name, r.qtype, []netip.Addr{ap.Addr().Unmap()})
}

// addrRRs returns A or AAAA records of addrs for qtype; other types NODATA.
func (s *Server) addrRRs(name string, qtype uint16, addrs []netip.Addr) result {
	var res result
	for _, a := range addrs {
		switch {
		case qtype == dns.TypeA && a.Is4():
			res.answer = append(res.answer, &dns.A{Hdr: s.hdr(name, dns.TypeA), A: a.AsSlice()})
		case qtype == dns.TypeAAAA && a.Is6():
			res.answer = append(res.answer, &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	return res
}

// endpoint is a ready headless endpoint with its per-pod name.
type endpoint struct {
	cluster, host string
	addr          netip.Addr
}

// readyEndpoints lists the ready endpoints of every exporting cluster,
// skipping drained clusters and clusters without a live gateway.
func readyEndpoints(v *catalog.View, key catalog.ServiceKey) []endpoint {
	var out []endpoint
	for _, x := range v.Exports(key) {
		if v.Drained(x.GetCluster(), key) || len(v.Gateways(x.GetCluster())) == 0 {
			continue
		}
		for _, e := range x.GetEndpoints() {
			a, err := netip.ParseAddr(e.GetAddress())
			if err != nil || !e.GetReady() {
				continue
			}
			host := e.GetHostname()
			if host == "" {
				host = "ep-" + strings.NewReplacer(".", "-", ":", "-").Replace(a.String())
			}
			out = append(out, endpoint{cluster: x.GetCluster(), host: host, addr: a})
		}
	}
	return out
}

// addrsOf returns the addresses of r's service: its ready endpoints'
// (headless, also returned as endpoints), the local ClusterIP (local-direct)
// or the clusterset IPs.
func (s *Server) addrsOf(r serviceRequest) ([]netip.Addr, []endpoint) {
	if r.headless {
		eps := readyEndpoints(r.view, r.key)
		addrs := make([]netip.Addr, len(eps))
		for i, e := range eps {
			addrs[i] = e.addr
		}
		return addrs, eps
	}
	if a, ok := s.localDirect(r.view, r.key); ok {
		return []netip.Addr{a}, nil
	}
	var addrs []netip.Addr
	for _, ip := range r.imp.GetIps() {
		if a, err := netip.ParseAddr(ip); err == nil {
			addrs = append(addrs, a)
		}
	}
	return addrs, nil
}

// service answers <svc>.<ns>.svc.<zone>.
func (s *Server) service(r serviceRequest) result {
	addrs, eps := s.addrsOf(r)
	if r.headless && len(eps) == 0 {
		return nxdomain
	}
	switch r.qtype {
	case dns.TypeA, dns.TypeAAAA:
		return s.addrRRs(r.name, r.qtype, addrs)
	case dns.TypeSRV: // extension: every named port at the service name
		var res result
		for _, p := range r.imp.GetPorts() {
			if p.GetName() != "" {
				pr := s.srv(r, p, addrs, eps)
				res.answer = append(res.answer, pr.answer...)
				if res.extra == nil { // the same targets for every port
					res.extra = pr.extra
				}
			}
		}
		return res
	}
	return result{}
}

// portSRV answers _<port>._<proto>.<svc>.<ns>.svc.<zone>.
func (s *Server) portSRV(r serviceRequest, port, proto string) result {
	for _, p := range r.imp.GetPorts() {
		if p.GetName() == "" || !strings.EqualFold(p.GetName(), port) || protoName(p) != proto {
			continue
		}
		if r.qtype != dns.TypeSRV {
			return result{}
		}
		addrs, eps := s.addrsOf(r)
		if r.headless && len(eps) == 0 {
			return nxdomain
		}
		return s.srv(r, p, addrs, eps)
	}
	return nxdomain
}

// srv returns SRV records of one port: one targeting the service name
// (ClusterSetIP), or one per ready endpoint's per-pod name (headless).
func (s *Server) srv(r serviceRequest, p *causewayv1.ServicePort, addrs []netip.Addr, eps []endpoint) result {
	name, svcName := r.name, r.svcName
	var res result
	if eps == nil {
		res.answer = append(res.answer, &dns.SRV{Hdr: s.hdr(name, dns.TypeSRV), Priority: 0, Weight: 100,
			Port: uint16(p.GetPort()), Target: svcName})
		res.extra = append(res.extra, s.addrRRs(svcName, dns.TypeA, addrs).answer...)
		res.extra = append(res.extra, s.addrRRs(svcName, dns.TypeAAAA, addrs).answer...)
		return res
	}
	for _, e := range eps {
		target := e.host + "." + e.cluster + "." + svcName
		res.answer = append(res.answer, &dns.SRV{Hdr: s.hdr(name, dns.TypeSRV), Priority: 0, Weight: 100,
			Port: uint16(p.GetPort()), Target: target})
		qt := dns.TypeA
		if e.addr.Is6() {
			qt = dns.TypeAAAA
		}
		res.extra = append(res.extra, s.addrRRs(target, qt, []netip.Addr{e.addr}).answer...)
	}
	return res
}

// pod answers <host>.<cluster>.<svc>.<ns>.svc.<zone> of a headless service.
func (s *Server) pod(r serviceRequest, cluster, host string) result {
	for _, e := range readyEndpoints(r.view, r.key) {
		if e.cluster == cluster && strings.EqualFold(e.host, host) {
			return s.addrRRs(r.name, r.qtype, []netip.Addr{e.addr})
		}
	}
	return nxdomain
}

// protoName is the SRV protocol label of a port; unspecified means TCP, as
// in Kubernetes.
func protoName(p *causewayv1.ServicePort) string {
	switch p.GetProtocol() {
	case causewayv1.Protocol_PROTOCOL_UDP:
		return "udp"
	case causewayv1.Protocol_PROTOCOL_SCTP:
		return "sctp"
	}
	return "tcp"
}

// localDirect returns the local ClusterIP of a service whose local export
// asks for local-direct routing, while that export has ready endpoints and
// is not drained; otherwise clients go through the clusterset IP.
func (s *Server) localDirect(v *catalog.View, key catalog.ServiceKey) (netip.Addr, bool) {
	x, ok := v.Export(key, s.cfg.Cluster)
	if !ok || x.GetRouting() != causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT ||
		catalog.ReadyEndpoints(x) == 0 || v.Drained(s.cfg.Cluster, key) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(x.GetClusterIp())
	return a, err == nil
}
