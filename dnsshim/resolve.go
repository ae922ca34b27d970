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

// resolve answers q (inside the zone) from v. Owner names keep the
// question's case; matching is case-insensitive.
func (s *Server) resolve(v *catalog.View, q dns.Question, local net.Addr) result {
	rel := strings.TrimSuffix(strings.ToLower(dns.Fqdn(q.Name)), s.cfg.Zone)
	rel = strings.TrimSuffix(rel, ".")
	var labels []string
	if rel != "" {
		labels = strings.Split(rel, ".")
	}
	name := q.Name
	switch {
	case len(labels) == 0: // apex
		switch q.Qtype {
		case dns.TypeSOA:
			soa := s.soa(v)
			soa.Hdr.Name = name
			return result{answer: []dns.RR{soa}}
		case dns.TypeNS:
			return result{answer: []dns.RR{&dns.NS{Hdr: s.hdr(name, dns.TypeNS), Ns: "ns.dns." + s.cfg.Zone}}}
		}
		return result{}
	case len(labels) == 1 && labels[0] == "dns-version":
		if q.Qtype == dns.TypeTXT {
			return result{answer: []dns.RR{&dns.TXT{Hdr: s.hdr(name, dns.TypeTXT), Txt: []string{"1.0.0"}}}}
		}
		return result{}
	case len(labels) == 2 && labels[0] == "ns" && labels[1] == "dns":
		return s.nameServer(name, q.Qtype, local)
	case len(labels) == 2 && labels[1] == "dns":
		return nxdomain
	}
	if labels[len(labels)-1] != "svc" {
		return nxdomain
	}
	labels = labels[:len(labels)-1]
	imports := v.Imports(s.cfg.Cluster)
	switch len(labels) {
	case 0, 1: // svc.<zone>, <ns>.svc.<zone>: exist while a service below does
		for k, imp := range imports {
			if len(labels) == 1 && k.Namespace != labels[0] {
				continue
			}
			if imp.GetType() != causewayv1.ServiceType_SERVICE_TYPE_HEADLESS || len(readyEndpoints(v, k)) > 0 {
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
	svcName := key.Name + "." + key.Namespace + ".svc." + s.cfg.Zone
	headless := imp.GetType() == causewayv1.ServiceType_SERVICE_TYPE_HEADLESS
	switch len(labels) {
	case 2:
		return s.service(v, imp, key, name, svcName, q.Qtype, headless)
	case 4:
		if strings.HasPrefix(labels[0], "_") && strings.HasPrefix(labels[1], "_") {
			return s.portSRV(v, imp, key, name, svcName, labels[0][1:], labels[1][1:], q.Qtype, headless)
		}
		if headless {
			return s.pod(v, key, name, labels[1], labels[0], q.Qtype)
		}
	}
	// Includes <clusterid>.<svc>.<ns>.svc: never served (KEP-1645).
	return nxdomain
}

func (s *Server) nameServer(name string, qtype uint16, local net.Addr) result {
	if local == nil {
		return result{}
	}
	ap, err := netip.ParseAddrPort(local.String())
	if err != nil || ap.Addr().IsUnspecified() { // a wildcard socket: no address to give
		return result{}
	}
	return s.addrRRs(name, qtype, []netip.Addr{ap.Addr().Unmap()})
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

func (s *Server) addrsOf(v *catalog.View, imp *causewayv1.ImportRecord, key catalog.ServiceKey, headless bool) ([]netip.Addr, []endpoint) {
	if headless {
		eps := readyEndpoints(v, key)
		addrs := make([]netip.Addr, len(eps))
		for i, e := range eps {
			addrs[i] = e.addr
		}
		return addrs, eps
	}
	if a, ok := s.localDirect(v, key); ok {
		return []netip.Addr{a}, nil
	}
	var addrs []netip.Addr
	for _, ip := range imp.GetIps() {
		if a, err := netip.ParseAddr(ip); err == nil {
			addrs = append(addrs, a)
		}
	}
	return addrs, nil
}

func (s *Server) service(v *catalog.View, imp *causewayv1.ImportRecord, key catalog.ServiceKey, name, svcName string, qtype uint16, headless bool) result {
	addrs, eps := s.addrsOf(v, imp, key, headless)
	if headless && len(eps) == 0 {
		return nxdomain
	}
	switch qtype {
	case dns.TypeA, dns.TypeAAAA:
		return s.addrRRs(name, qtype, addrs)
	case dns.TypeSRV: // extension: every named port at the service name
		var res result
		for _, p := range imp.GetPorts() {
			if p.GetName() != "" {
				r := s.srv(name, svcName, p, addrs, eps)
				res.answer = append(res.answer, r.answer...)
				if res.extra == nil { // the same targets for every port
					res.extra = r.extra
				}
			}
		}
		return res
	}
	return result{}
}

func (s *Server) portSRV(v *catalog.View, imp *causewayv1.ImportRecord, key catalog.ServiceKey, name, svcName, port, proto string, qtype uint16, headless bool) result {
	for _, p := range imp.GetPorts() {
		if p.GetName() == "" || !strings.EqualFold(p.GetName(), port) || protoName(p) != proto {
			continue
		}
		if qtype != dns.TypeSRV {
			return result{}
		}
		addrs, eps := s.addrsOf(v, imp, key, headless)
		if headless && len(eps) == 0 {
			return nxdomain
		}
		return s.srv(name, svcName, p, addrs, eps)
	}
	return nxdomain
}

// srv returns SRV records of one port: one targeting the service name
// (ClusterSetIP), or one per ready endpoint's per-pod name (headless).
func (s *Server) srv(name, svcName string, p *causewayv1.ServicePort, addrs []netip.Addr, eps []endpoint) result {
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
func (s *Server) pod(v *catalog.View, key catalog.ServiceKey, name, cluster, host string, qtype uint16) result {
	for _, e := range readyEndpoints(v, key) {
		if e.cluster == cluster && strings.EqualFold(e.host, host) {
			return s.addrRRs(name, qtype, []netip.Addr{e.addr})
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
