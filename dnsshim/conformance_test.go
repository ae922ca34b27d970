package dnsshim

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// conformanceCase is one query of the conformance table and what the
// answer must be.
type conformanceCase struct {
	name      string
	qname     string
	qtype     uint16
	transport string         // "udp" or "tcp"; empty: both
	edns      uint16         // EDNS0 payload size offered; zero: no OPT
	do        bool           // DNSSEC OK bit of the OPT
	mod       func(*dns.Msg) // changes the query before it is sent
	rcode     int
	answer    []string // the answer section, sorted, OPT left out
	count     int      // when answer is nil: the number of answers
	extra     []string // the additional section, sorted, OPT left out
	soaAuth   bool     // the SOA (and only it) in authority
	tc        bool     // truncated
}

const (
	z       = "clusterset.local."
	zoneSOA = "clusterset.local. 5 IN SOA ns.dns.clusterset.local. hostmaster.clusterset.local. 42 7200 1800 86400 5"
)

// conformanceCases is the whole table, by group.
func conformanceCases() []conformanceCase {
	var all []conformanceCase
	for _, group := range [][]conformanceCase{clusterSetIPCases(), localityCases(), headlessCases(), zoneCases(), transportCases(), badQueryCases()} {
		all = append(all, group...)
	}
	return all
}

// clusterSetIPCases covers ClusterSetIP services: addresses, SRV, negative answers.
func clusterSetIPCases() []conformanceCase {
	return []conformanceCase{
		{name: "clusterset ip A", qname: "echo.demo.svc." + z, qtype: dns.TypeA,
			answer: []string{"echo.demo.svc.clusterset.local. 5 IN A 10.2.0.5"}},
		{name: "clusterset ip AAAA", qname: "dual.demo.svc." + z, qtype: dns.TypeAAAA,
			answer: []string{"dual.demo.svc.clusterset.local. 5 IN AAAA fd00::7"}},
		{name: "dual-stack A", qname: "dual.demo.svc." + z, qtype: dns.TypeA,
			answer: []string{"dual.demo.svc.clusterset.local. 5 IN A 10.2.0.7"}},
		{name: "case-insensitive, case kept", qname: "ECHO.Demo.SVC.ClusterSet.Local.", qtype: dns.TypeA,
			answer: []string{"ECHO.Demo.SVC.ClusterSet.Local. 5 IN A 10.2.0.5"}},
		{name: "AAAA without v6 is NODATA", qname: "echo.demo.svc." + z, qtype: dns.TypeAAAA, soaAuth: true},
		{name: "TXT at a service is NODATA", qname: "echo.demo.svc." + z, qtype: dns.TypeTXT, soaAuth: true},
		{name: "named port SRV", qname: "_http._tcp.echo.demo.svc." + z, qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.echo.demo.svc.clusterset.local. 5 IN SRV 0 100 8080 echo.demo.svc.clusterset.local."},
			extra:  []string{"echo.demo.svc.clusterset.local. 5 IN A 10.2.0.5"}},
		{name: "named UDP port SRV, both address families in additional", qname: "_dns._udp.dual.demo.svc." + z, qtype: dns.TypeSRV,
			answer: []string{"_dns._udp.dual.demo.svc.clusterset.local. 5 IN SRV 0 100 53 dual.demo.svc.clusterset.local."},
			extra:  []string{"dual.demo.svc.clusterset.local. 5 IN A 10.2.0.7", "dual.demo.svc.clusterset.local. 5 IN AAAA fd00::7"}},
		{name: "port name matching is case-insensitive", qname: "_HTTP._TCP.dual.demo.svc." + z, qtype: dns.TypeSRV,
			answer: []string{"_HTTP._TCP.dual.demo.svc.clusterset.local. 5 IN SRV 0 100 80 dual.demo.svc.clusterset.local."},
			extra:  []string{"dual.demo.svc.clusterset.local. 5 IN A 10.2.0.7", "dual.demo.svc.clusterset.local. 5 IN AAAA fd00::7"}},
		{name: "SRV at service name (extension): every named port", qname: "dual.demo.svc." + z, qtype: dns.TypeSRV,
			answer: []string{
				"dual.demo.svc.clusterset.local. 5 IN SRV 0 100 53 dual.demo.svc.clusterset.local.",
				"dual.demo.svc.clusterset.local. 5 IN SRV 0 100 80 dual.demo.svc.clusterset.local."},
			extra: []string{"dual.demo.svc.clusterset.local. 5 IN A 10.2.0.7", "dual.demo.svc.clusterset.local. 5 IN AAAA fd00::7"}},
		{name: "SRV at service name skips unnamed ports", qname: "echo.demo.svc." + z, qtype: dns.TypeSRV,
			answer: []string{"echo.demo.svc.clusterset.local. 5 IN SRV 0 100 8080 echo.demo.svc.clusterset.local."},
			extra:  []string{"echo.demo.svc.clusterset.local. 5 IN A 10.2.0.5"}},
		{name: "unnamed port has no SRV", qname: "_9000._tcp.dual.demo.svc." + z, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, soaAuth: true},
		{name: "wrong protocol SRV", qname: "_http._udp.echo.demo.svc." + z, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, soaAuth: true},
		{name: "A at a port name is NODATA", qname: "_http._tcp.echo.demo.svc." + z, qtype: dns.TypeA, soaAuth: true},
		{name: "unknown service", qname: "nope.demo.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soaAuth: true},
		{name: "service of another cluster only", qname: "other.demo.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soaAuth: true},
		{name: "clusterid.svc is never served", qname: "east.echo.demo.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soaAuth: true},
		{name: "namespace is an empty non-terminal", qname: "demo.svc." + z, qtype: dns.TypeA, soaAuth: true},
		{name: "svc is an empty non-terminal", qname: "svc." + z, qtype: dns.TypeA, soaAuth: true},
		{name: "unknown namespace", qname: "prod.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soaAuth: true},
		{name: "name outside svc", qname: "missing." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soaAuth: true},
	}
}

// localityCases covers routing policies and drains.
func localityCases() []conformanceCase {
	return []conformanceCase{
		{name: "local-direct with ready local endpoints", qname: "near.demo.svc." + z, qtype: dns.TypeA,
			answer: []string{"near.demo.svc.clusterset.local. 5 IN A 10.96.0.1"}},
		{name: "local-direct without ready local endpoints", qname: "idle.demo.svc." + z, qtype: dns.TypeA,
			answer: []string{"idle.demo.svc.clusterset.local. 5 IN A 10.2.1.2"}},
		{name: "local-direct drained locally", qname: "parked.demo.svc." + z, qtype: dns.TypeA,
			answer: []string{"parked.demo.svc.clusterset.local. 5 IN A 10.2.1.3"}},
	}
}

// headlessCases covers headless services: endpoints, per-pod names, SRV, dropped clusters.
func headlessCases() []conformanceCase {
	return []conformanceCase{
		{name: "headless A lists ready endpoints", qname: "db.demo.svc." + z, qtype: dns.TypeA, answer: []string{
			"db.demo.svc.clusterset.local. 5 IN A 10.9.0.1",
			"db.demo.svc.clusterset.local. 5 IN A 10.9.0.2",
			"db.demo.svc.clusterset.local. 5 IN A 10.9.0.3"}},
		{name: "headless A across clusters, without drained or gateway-less clusters", qname: "cache.demo.svc." + z, qtype: dns.TypeA, answer: []string{
			"cache.demo.svc.clusterset.local. 5 IN A 10.7.0.1",
			"cache.demo.svc.clusterset.local. 5 IN A 10.7.1.1"}},
		{name: "headless AAAA", qname: "cache.demo.svc." + z, qtype: dns.TypeAAAA,
			answer: []string{"cache.demo.svc.clusterset.local. 5 IN AAAA fd00::71"}},
		{name: "headless per-pod name", qname: "db-1.east.db.demo.svc." + z, qtype: dns.TypeA,
			answer: []string{"db-1.east.db.demo.svc.clusterset.local. 5 IN A 10.9.0.2"}},
		{name: "headless per-pod stable name without hostname", qname: "ep-10-7-1-1.north.cache.demo.svc." + z, qtype: dns.TypeA,
			answer: []string{"ep-10-7-1-1.north.cache.demo.svc.clusterset.local. 5 IN A 10.7.1.1"}},
		{name: "headless per-pod AAAA", qname: "c-v6.north.cache.demo.svc." + z, qtype: dns.TypeAAAA,
			answer: []string{"c-v6.north.cache.demo.svc.clusterset.local. 5 IN AAAA fd00::71"}},
		{name: "headless per-pod name without that type is NODATA", qname: "c-v6.north.cache.demo.svc." + z, qtype: dns.TypeA, soaAuth: true},
		{name: "headless pod of a cluster whose gateway leases expired", qname: "c-south.south.cache.demo.svc." + z, qtype: dns.TypeA,
			rcode: dns.RcodeNameError, soaAuth: true},
		{name: "headless pod of a drained cluster", qname: "c-central.central.cache.demo.svc." + z, qtype: dns.TypeA,
			rcode: dns.RcodeNameError, soaAuth: true},
		{name: "headless pod in the wrong cluster", qname: "c-0.north.cache.demo.svc." + z, qtype: dns.TypeA,
			rcode: dns.RcodeNameError, soaAuth: true},
		{name: "headless unready pod", qname: "db-unready.east.db.demo.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soaAuth: true},
		{name: "headless clusterid.svc is never served", qname: "north.cache.demo.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soaAuth: true},
		{name: "headless SRV targets pods", qname: "_pg._tcp.db.demo.svc." + z, qtype: dns.TypeSRV, answer: []string{
			"_pg._tcp.db.demo.svc.clusterset.local. 5 IN SRV 0 100 5432 db-0.east.db.demo.svc.clusterset.local.",
			"_pg._tcp.db.demo.svc.clusterset.local. 5 IN SRV 0 100 5432 db-1.east.db.demo.svc.clusterset.local.",
			"_pg._tcp.db.demo.svc.clusterset.local. 5 IN SRV 0 100 5432 db-2.east.db.demo.svc.clusterset.local."}, extra: []string{
			"db-0.east.db.demo.svc.clusterset.local. 5 IN A 10.9.0.1",
			"db-1.east.db.demo.svc.clusterset.local. 5 IN A 10.9.0.2",
			"db-2.east.db.demo.svc.clusterset.local. 5 IN A 10.9.0.3"}},
		{name: "headless SRV across clusters, unspecified protocol is TCP", qname: "_redis._tcp.cache.demo.svc." + z, qtype: dns.TypeSRV, answer: []string{
			"_redis._tcp.cache.demo.svc.clusterset.local. 5 IN SRV 0 100 6379 c-0.east.cache.demo.svc.clusterset.local.",
			"_redis._tcp.cache.demo.svc.clusterset.local. 5 IN SRV 0 100 6379 c-v6.north.cache.demo.svc.clusterset.local.",
			"_redis._tcp.cache.demo.svc.clusterset.local. 5 IN SRV 0 100 6379 ep-10-7-1-1.north.cache.demo.svc.clusterset.local."}, extra: []string{
			"c-0.east.cache.demo.svc.clusterset.local. 5 IN A 10.7.0.1",
			"c-v6.north.cache.demo.svc.clusterset.local. 5 IN AAAA fd00::71",
			"ep-10-7-1-1.north.cache.demo.svc.clusterset.local. 5 IN A 10.7.1.1"}},
		{name: "headless SRV at service name (extension)", qname: "db.demo.svc." + z, qtype: dns.TypeSRV, answer: []string{
			"db.demo.svc.clusterset.local. 5 IN SRV 0 100 5432 db-0.east.db.demo.svc.clusterset.local.",
			"db.demo.svc.clusterset.local. 5 IN SRV 0 100 5432 db-1.east.db.demo.svc.clusterset.local.",
			"db.demo.svc.clusterset.local. 5 IN SRV 0 100 5432 db-2.east.db.demo.svc.clusterset.local."}, extra: []string{
			"db-0.east.db.demo.svc.clusterset.local. 5 IN A 10.9.0.1",
			"db-1.east.db.demo.svc.clusterset.local. 5 IN A 10.9.0.2",
			"db-2.east.db.demo.svc.clusterset.local. 5 IN A 10.9.0.3"}},
		{name: "headless without ready endpoints", qname: "gone.demo.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNameError, soaAuth: true},
	}
}

// zoneCases covers the zone apex, dns-version and names outside the zone.
func zoneCases() []conformanceCase {
	return []conformanceCase{
		{name: "dns-version", qname: "dns-version." + z, qtype: dns.TypeTXT,
			answer: []string{`dns-version.clusterset.local. 5 IN TXT "1.0.0"`}},
		{name: "dns-version A is NODATA", qname: "dns-version." + z, qtype: dns.TypeA, soaAuth: true},
		{name: "apex SOA", qname: z, qtype: dns.TypeSOA, answer: []string{zoneSOA}},
		{name: "apex NS", qname: z, qtype: dns.TypeNS, answer: []string{"clusterset.local. 5 IN NS ns.dns.clusterset.local."}},
		{name: "apex SOA, any case", qname: "ClusterSet.LOCAL.", qtype: dns.TypeSOA, answer: []string{
			"ClusterSet.LOCAL. 5 IN SOA ns.dns.clusterset.local. hostmaster.clusterset.local. 42 7200 1800 86400 5"}},
		{name: "apex A is NODATA", qname: z, qtype: dns.TypeA, soaAuth: true},
		{name: "name server address", qname: "ns.dns." + z, qtype: dns.TypeA, count: 1},
		{name: "outside the zone", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "parent of the zone", qname: "local.", qtype: dns.TypeSOA, rcode: dns.RcodeRefused},
		{name: "suffix that is not a subdomain", qname: "xclusterset.local.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
	}
}

// transportCases covers EDNS0 and truncation.
func transportCases() []conformanceCase {
	return []conformanceCase{
		{name: "EDNS0: OPT answered, size 1232, DO copied", qname: "echo.demo.svc." + z, qtype: dns.TypeA, edns: 4096, do: true,
			answer: []string{"echo.demo.svc.clusterset.local. 5 IN A 10.2.0.5"}},
		{name: "60 answers do not fit 512 bytes: TC", qname: "big.demo.svc." + z, qtype: dns.TypeA, transport: "udp", tc: true},
		{name: "60 answers fit the EDNS0 size", qname: "big.demo.svc." + z, qtype: dns.TypeA, transport: "udp", edns: 4096, count: 60},
		{name: "TCP retry gets every answer", qname: "big.demo.svc." + z, qtype: dns.TypeA, transport: "tcp", count: 60},
		{name: "no EDNS0 size below 512", qname: "big.demo.svc." + z, qtype: dns.TypeA, transport: "udp", edns: 100, tc: true},
	}
}

// badQueryCases covers queries that get FORMERR, NOTIMP or BADVERS.
func badQueryCases() []conformanceCase {
	twoQuestions := func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }
	return []conformanceCase{
		{name: "class CH", qname: "echo.demo.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeNotImplemented,
			mod: func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }},
		{name: "two questions", qname: "echo.demo.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeFormatError, mod: twoQuestions},
		{name: "no question", qname: "echo.demo.svc." + z, qtype: dns.TypeA, rcode: dns.RcodeFormatError,
			mod: func(m *dns.Msg) { m.Question = nil }},
		{name: "NOTIFY", qname: z, qtype: dns.TypeSOA, rcode: dns.RcodeNotImplemented,
			mod: func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }},
		{name: "UPDATE", qname: z, qtype: dns.TypeSOA, rcode: dns.RcodeNotImplemented,
			mod: func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }},
		{name: "EDNS version 1", qname: "echo.demo.svc." + z, qtype: dns.TypeA, edns: 1232, rcode: dns.RcodeBadVers,
			mod: func(m *dns.Msg) { m.IsEdns0().SetVersion(1) }},
		{name: "two OPT records", qname: "echo.demo.svc." + z, qtype: dns.TypeA, edns: 1232, rcode: dns.RcodeFormatError,
			mod: func(m *dns.Msg) { m.Extra = append(m.Extra, m.Extra[0]) }},
	}
}

// TestConformance runs every rule of the DNS specification the shim
// implements against a live server, over UDP and TCP.
func TestConformance(t *testing.T) {
	src := &source{}
	src.v.Store(testView(3))
	addr, _, _ := startServer(t, src)
	for _, transport := range []string{"udp", "tcp"} {
		for _, tc := range conformanceCases() {
			if tc.transport != "" && tc.transport != transport {
				continue
			}
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				// Twice: the UDP path answers the second from its cache.
				for range 2 {
					checkConformance(t, tc, exchange(t, addr, transport, tc.query()))
				}
			})
		}
	}
}

func (tc conformanceCase) query() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(tc.qname, tc.qtype)
	if tc.edns != 0 {
		m.SetEdns0(tc.edns, tc.do)
	}
	if tc.mod != nil {
		tc.mod(m)
	}
	return m
}

func checkConformance(t *testing.T, tc conformanceCase, r *dns.Msg) {
	t.Helper()
	require.Equal(t, dns.RcodeToString[tc.rcode], dns.RcodeToString[r.Rcode])
	require.Equal(t, tc.tc, r.Truncated, "TC")
	switch {
	case tc.answer != nil:
		require.Equal(t, tc.answer, rrStrings(r.Answer))
	case tc.count > 0:
		require.Len(t, r.Answer, tc.count)
	case tc.tc:
		require.Less(t, len(r.Answer), 60)
	default:
		require.Empty(t, r.Answer)
	}
	if !tc.tc {
		require.Equal(t, tc.extra, rrStrings(r.Extra))
	}
	require.Equal(t, tc.rcode == dns.RcodeSuccess || tc.rcode == dns.RcodeNameError, r.Authoritative, "AA")
	if tc.soaAuth {
		require.Len(t, r.Ns, 1)
		soa, ok := r.Ns[0].(*dns.SOA)
		require.True(t, ok, "authority is %v", r.Ns)
		require.Equal(t, "clusterset.local.", soa.Hdr.Name)
		require.Equal(t, uint32(5), soa.Minttl, "negative-caching TTL")
	} else {
		require.Empty(t, r.Ns)
	}
	if opt := r.IsEdns0(); tc.edns != 0 && tc.rcode != dns.RcodeFormatError {
		require.NotNil(t, opt, "EDNS0 answered with OPT")
		require.Equal(t, uint16(ednsUDPSize), opt.UDPSize())
		require.Equal(t, tc.do, opt.Do(), "DO")
	} else if tc.edns == 0 {
		require.Nil(t, opt)
	}
}
