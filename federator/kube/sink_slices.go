package kube

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	discoveryv1ac "k8s.io/client-go/applyconfigurations/discovery/v1"
)

// desiredSlice is one EndpointSlice the sink wants.
type desiredSlice struct {
	name, sourceCluster string
	family              discoveryv1.AddressType
	endpoints           []discoveryv1.Endpoint
	ports               []discoveryv1.EndpointPort
}

// applySlices applies the EndpointSlices of imp and deletes the ones it
// no longer has.
func (c *importer) applySlices(ctx context.Context, imp *causewayv1.ImportRecord) error {
	want := c.desiredSlices(imp)
	names := map[string]bool{}
	for _, d := range want {
		names[d.name] = true
		if err := c.applySlice(ctx, imp, d); err != nil {
			return err
		}
	}
	return c.pruneSlices(ctx, imp.GetNamespace(), imp.GetName(), names)
}

func (c *importer) desiredSlices(imp *causewayv1.ImportRecord) []desiredSlice {
	dname := DerivedName(imp.GetName())
	var out []desiredSlice
	add := func(base, source string, addrs []endpointAddr, ports []discoveryv1.EndpointPort) {
		for _, fam := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
			d := desiredSlice{name: base, sourceCluster: source, family: fam, ports: ports}
			if fam == discoveryv1.AddressTypeIPv6 {
				d.name += "-v6"
			}
			for _, a := range addrs {
				if (a.addr.Is4() || a.addr.Is4In6()) != (fam == discoveryv1.AddressTypeIPv4) {
					continue
				}
				ep := discoveryv1.Endpoint{Addresses: []string{a.addr.Unmap().String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(a.ready)}}
				if a.hostname != "" {
					ep.Hostname = ptr(a.hostname)
				}
				d.endpoints = append(d.endpoints, ep)
			}
			if fam == discoveryv1.AddressTypeIPv4 || len(d.endpoints) > 0 {
				sort.Slice(d.endpoints, func(i, j int) bool { return d.endpoints[i].Addresses[0] < d.endpoints[j].Addresses[0] })
				out = append(out, d)
			}
		}
	}
	if imp.GetType() == causewayv1.ServiceType_SERVICE_TYPE_HEADLESS {
		v := c.feed.View()
		k := catalog.ServiceKey{Namespace: imp.GetNamespace(), Name: imp.GetName()}
		for _, cluster := range imp.GetClusters() {
			x, ok := v.Export(k, cluster)
			if !ok || v.Drained(cluster, k) {
				continue
			}
			var addrs []endpointAddr
			for _, ep := range x.GetEndpoints() {
				if a, err := netip.ParseAddr(ep.GetAddress()); err == nil {
					addrs = append(addrs, endpointAddr{addr: a, ready: ep.GetReady(), hostname: ep.GetHostname()})
				}
			}
			ports := make([]discoveryv1.EndpointPort, 0, len(x.GetPorts()))
			for _, p := range x.GetPorts() {
				ports = append(ports, discoveryv1.EndpointPort{Name: ptr(p.GetName()), Protocol: ptr(kubeProtocol(p.GetProtocol())), Port: ptr(int32(p.GetPort()))})
			}
			add(dname+"-"+cluster, cluster, addrs, ports)
		}
		return out
	}
	var addrs []endpointAddr
	for _, a := range c.gatewayAddrs() {
		addrs = append(addrs, endpointAddr{addr: a, ready: true})
	}
	ports := make([]discoveryv1.EndpointPort, 0, len(imp.GetPorts()))
	for _, p := range imp.GetPorts() {
		port := p.GetPort()
		if e := egressPort(imp, p); e != 0 {
			port = e
		}
		ports = append(ports, discoveryv1.EndpointPort{Name: ptr(p.GetName()), Protocol: ptr(kubeProtocol(p.GetProtocol())), Port: ptr(int32(port))})
	}
	add(dname+"-gateway", c.cfg.Cluster, addrs, ports)
	return out
}

type endpointAddr struct {
	addr     netip.Addr
	ready    bool
	hostname string
}

// gatewayAddrs are the ready addresses of the local gateway's Service.
func (c *importer) gatewayAddrs() []netip.Addr {
	if c.gwSlices == nil {
		return nil
	}
	slices, err := c.gwSlices.List(klabels.Everything())
	if err != nil {
		return nil
	}
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, es := range slices {
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil && !seen[ip] {
					seen[ip] = true
					out = append(out, ip)
				}
			}
		}
	}
	return out
}

func (c *importer) applySlice(ctx context.Context, imp *causewayv1.ImportRecord, d desiredSlice) error {
	ns := imp.GetNamespace()
	lbl := labels(c.cfg.Cluster, imp.GetName())
	lbl[LabelSourceCluster] = d.sourceCluster
	lbl[labelSliceService] = DerivedName(imp.GetName())
	if have, err := c.slices.EndpointSlices(ns).Get(d.name); err == nil && labelsInclude(have.Labels, lbl) &&
		have.AddressType == d.family && apiequality.Semantic.DeepEqual(normEndpoints(have.Endpoints), normEndpoints(d.endpoints)) &&
		apiequality.Semantic.DeepEqual(have.Ports, d.ports) {
		return nil
	}
	ac := discoveryv1ac.EndpointSlice(d.name, ns).WithLabels(lbl).WithAddressType(d.family)
	for _, ep := range d.endpoints {
		e := discoveryv1ac.Endpoint().WithAddresses(ep.Addresses...).WithConditions(discoveryv1ac.EndpointConditions().WithReady(*ep.Conditions.Ready))
		if ep.Hostname != nil {
			e.WithHostname(*ep.Hostname)
		}
		ac.WithEndpoints(e)
	}
	for _, p := range d.ports {
		ac.WithPorts(discoveryv1ac.EndpointPort().WithName(*p.Name).WithProtocol(*p.Protocol).WithPort(*p.Port))
	}
	if _, err := c.cfg.Kube.DiscoveryV1().EndpointSlices(ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		if gone := c.namespaceGone(ns, err); gone != nil {
			return gone
		}
		return fmt.Errorf("apply EndpointSlice %s/%s: %w", ns, d.name, err)
	}
	c.wrote()
	return nil
}

// normEndpoints drops fields the apiserver may fill in that we do not set.
func normEndpoints(eps []discoveryv1.Endpoint) []discoveryv1.Endpoint {
	out := make([]discoveryv1.Endpoint, len(eps))
	for i, e := range eps {
		out[i] = discoveryv1.Endpoint{Addresses: e.Addresses, Hostname: e.Hostname, Conditions: discoveryv1.EndpointConditions{Ready: e.Conditions.Ready}}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// pruneSlices deletes the slices of ns/name we own that keep does not name.
func (c *importer) pruneSlices(ctx context.Context, ns, name string, keep map[string]bool) error {
	have, err := c.slices.EndpointSlices(ns).List(klabels.SelectorFromSet(klabels.Set{LabelServiceName: name}))
	if err != nil {
		return nil
	}
	for _, es := range have {
		if keep[es.Name] || !ours(es.Labels, c.cfg.Cluster) {
			continue
		}
		if err := c.cfg.Kube.DiscoveryV1().EndpointSlices(ns).Delete(ctx, es.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete EndpointSlice %s/%s: %w", ns, es.Name, err)
		}
		c.wrote()
	}
	return nil
}
