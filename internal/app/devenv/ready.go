package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/gateway"
	"github.com/causeway-mesh/causeway/internal/app/cli"
	"github.com/miekg/dns"
)

// readyProbeTimeout bounds each readiness probe.
const readyProbeTimeout = time.Second

// waitReady waits until every cluster can serve every demo service, seen
// from outside as a user sees it, and returns the State with the VIPs the
// DNS shims answer.
func waitReady(ctx context.Context, cfg Config, clusters []*cluster, svcs []demoService, etcd *devEtcd) (*State, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	p := &prober{http: &http.Client{Timeout: readyProbeTimeout, Transport: &http.Transport{DisableKeepAlives: true}},
		domain: cfg.Domain, vips: map[string]map[string]string{}}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		why := p.notReady(ctx, clusters, svcs)
		if why == "" {
			return buildState(cfg, clusters, svcs, etcd, p.vips), nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("clusterset not ready after %s: %s", cfg.ReadyTimeout, why)
			}
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// prober checks readiness through the components' public endpoints only:
// /readyz of each, DNS answers, the gateway's explanation and a request
// through each VIP.
type prober struct {
	http   *http.Client
	domain string
	// vips are the DNS shims' answers: cluster → "namespace/name" → VIP.
	vips map[string]map[string]string
	// served are the (cluster, service) pairs already seen answering.
	served map[string]bool
}

// notReady returns why the clusterset is not ready yet, or "".
func (p *prober) notReady(ctx context.Context, clusters []*cluster, svcs []demoService) string {
	for _, c := range clusters {
		for _, ln := range []net.Listener{c.fed.HTTP, c.gw.HTTP, c.dns.HTTP} {
			if why := p.readyz(ctx, ln.Addr().String()); why != "" {
				return c.spec.Name + ": " + why
			}
		}
		for _, s := range svcs {
			if why := p.serves(ctx, c, s); why != "" {
				return c.spec.Name + ": " + why
			}
		}
	}
	return ""
}

// readyz fails unless http://addr/readyz answers 200.
func (p *prober) readyz(ctx context.Context, addr string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Sprintf("%s/readyz: %v", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("%s/readyz: %s %s", addr, resp.Status, body)
	}
	return ""
}

// serves fails unless c's DNS shim answers s's name and every port of s
// serves (servesPort).
func (p *prober) serves(ctx context.Context, c *cluster, s demoService) string {
	key := catalog.ServiceKey{Namespace: s.Namespace, Name: s.Name}
	if p.served[c.spec.Name+" "+key.String()] {
		return ""
	}
	vip, err := p.lookup(ctx, c.dns.UDP.LocalAddr().String(), s.Name+"."+s.Namespace+".svc."+p.domain+".")
	if err != nil {
		return fmt.Sprintf("DNS shim: %s: %v", key, err)
	}
	for _, port := range s.ports() {
		if why := p.servesPort(ctx, c, key, vip, port, len(s.ExportedBy)); why != "" {
			return why
		}
	}
	if p.vips[c.spec.Name] == nil {
		p.vips[c.spec.Name] = map[string]string{}
	}
	p.vips[c.spec.Name][key.String()] = vip
	if p.served == nil {
		p.served = map[string]bool{}
	}
	p.served[c.spec.Name+" "+key.String()] = true
	return ""
}

// servesPort fails unless c's gateway has every one of the exporters of
// key as a candidate for port, and a request to vip:port is answered: 200
// on the L4 port; on the L7 port any answer below 500, since routes
// (--routes) may legitimately answer 404 for "/".
func (p *prober) servesPort(ctx context.Context, c *cluster, key catalog.ServiceKey, vip string, port demoPort, exporters int) string {
	e, err := cli.FetchExplanation(ctx, p.http, "http://"+c.gw.HTTP.Addr().String(), key, uint32(port.Port))
	if err != nil {
		return fmt.Sprintf("gateway: explain %s port %d: %v", key, port.Port, err)
	}
	candidates := 0
	for _, ec := range e.Clusters {
		if ec.Status == gateway.StatusCandidate {
			candidates++
		}
	}
	if candidates != exporters {
		return fmt.Sprintf("gateway: %d of %d exporting clusters of %s port %d are candidates", candidates, exporters, key, port.Port)
	}
	if err := p.get(ctx, net.JoinHostPort(vip, strconv.Itoa(port.Port)), port.AppProtocol != ""); err != nil {
		return fmt.Sprintf("gateway: GET through %s's VIP port %d: %v", key, port.Port, err)
	}
	return ""
}

// lookup asks server (UDP) for name's A record and returns the one address.
func (p *prober) lookup(ctx context.Context, server, name string) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	dc := &dns.Client{Net: "udp", Timeout: readyProbeTimeout}
	r, _, err := dc.ExchangeContext(ctx, m, server)
	if err != nil {
		return "", err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return "", fmt.Errorf("answer %s with %d records", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok {
		return "", fmt.Errorf("answer is %s, not A", dns.TypeToString[r.Answer[0].Header().Rrtype])
	}
	return a.A.String(), nil
}

// get fails unless GET http://addr/ answers 200, or with anyBelow500 any
// status below 500.
func (p *prober) get(ctx context.Context, addr string, anyBelow500 bool) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK && (!anyBelow500 || resp.StatusCode >= 500) {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
