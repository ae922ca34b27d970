package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	discoveryv1ac "k8s.io/client-go/applyconfigurations/discovery/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"
	mcsinformers "sigs.k8s.io/mcs-api/pkg/client/informers/externalversions"
	mcslisters "sigs.k8s.io/mcs-api/pkg/client/listers/apis/v1beta1"
)

// SinkConfig configures a Sink.
type SinkConfig struct {
	// Cluster is this cluster's name. Required.
	Cluster string
	// Kube and MCS are clients of this cluster's apiserver. Required.
	Kube kubernetes.Interface
	MCS  mcsclient.Interface
	// GatewayService is "namespace/name" of the local gateway's Service;
	// the derived EndpointSlices list its ready endpoints at the imports'
	// egress ports. Empty: derived ClusterSetIP Services get no endpoints.
	GatewayService string
	// Workers is the number of reconcile workers; default 4.
	Workers int
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
}

// Sink writes a cluster's imports into the cluster: per imported service
// a ServiceImport, a derived Service named DerivedName(name) and its
// EndpointSlices (the local gateway's endpoints at the egress ports for
// ClusterSetIP services, the exporting clusters' ready endpoints for
// headless ones). It implements federator.ImportSink.
type Sink struct {
	cfg SinkConfig
	log *slog.Logger

	feed     *catalog.Feed
	imports  mcslisters.ServiceImportLister
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	gwSlices discoverylisters.EndpointSliceLister
	// namespaces lists this cluster's Namespaces (all of them, unlike the
	// other listers, which see only what carries our labels).
	namespaces corelisters.NamespaceLister
	queue      workqueue.TypedRateLimitingInterface[string]
	ready      atomic.Bool

	writes     atomic.Int64
	initial    atomic.Int64 // keys queued by the first full pass
	reconciled atomic.Int64
	inflight   atomic.Int64

	// waiting holds the keys of imports whose namespace is absent, so
	// that waitingForNamespace logs each once.
	waiting sync.Map
}

var _ federator.ImportSink = (*Sink)(nil)

// NewSink returns a Sink for cfg.
func NewSink(cfg SinkConfig) (*Sink, error) {
	switch {
	case cfg.Cluster == "":
		return nil, errors.New("kube sink: no cluster name")
	case cfg.Kube == nil || cfg.MCS == nil:
		return nil, errors.New("kube sink: no Kubernetes client")
	}
	if cfg.GatewayService != "" {
		if _, _, err := cache.SplitMetaNamespaceKey(cfg.GatewayService); err != nil {
			return nil, fmt.Errorf("kube sink: gateway service %q: want namespace/name", cfg.GatewayService)
		}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Sink{cfg: cfg, log: log.With("component", "kube-sink", "cluster", cfg.Cluster)}, nil
}

// Settled reports whether the sink has reconciled everything it found at
// start and has nothing queued or in flight.
func (s *Sink) Settled() bool {
	return s.ready.Load() && s.reconciled.Load() >= s.initial.Load() && s.queue.Len() == 0 && s.inflight.Load() == 0
}

// Writes counts the objects this sink created, changed or deleted.
func (s *Sink) Writes() int64 { return s.writes.Load() }

// Addresses returns the ClusterIP of k's derived Service, if it has one.
func (s *Sink) Addresses(k catalog.ServiceKey) []string {
	if !s.ready.Load() {
		return nil
	}
	svc, err := s.services.Services(k.Namespace).Get(DerivedName(k.Name))
	if err != nil || !ours(svc.Labels, s.cfg.Cluster) || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	return []string{svc.Spec.ClusterIP}
}

func ours(l map[string]string, cluster string) bool {
	return l[LabelManagedBy] == ManagedByValue && l[LabelImportingCluster] == cluster
}

// Run keeps the cluster's import objects equal to feed's imports of this
// cluster until ctx ends.
func (s *Sink) Run(ctx context.Context, feed *catalog.Feed, kick func()) error {
	s.feed = feed
	owned := func(o *metav1.ListOptions) {
		o.LabelSelector = klabels.SelectorFromSet(klabels.Set{LabelManagedBy: ManagedByValue, LabelImportingCluster: s.cfg.Cluster}).String()
	}
	kf := kubeinformers.NewSharedInformerFactoryWithOptions(s.cfg.Kube, 0, kubeinformers.WithTweakListOptions(owned))
	mf := mcsinformers.NewSharedInformerFactoryWithOptions(s.cfg.MCS, 0, mcsinformers.WithTweakListOptions(owned))
	siInf := mf.Multicluster().V1beta1().ServiceImports()
	svcInf := kf.Core().V1().Services()
	sliceInf := kf.Discovery().V1().EndpointSlices()
	s.imports, s.services, s.slices = siInf.Lister(), svcInf.Lister(), sliceInf.Lister()
	synced := []cache.InformerSynced{siInf.Informer().HasSynced, svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced}
	s.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "causeway-imports"})

	byLabel := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if o, ok := obj.(metav1.Object); ok && o.GetLabels()[LabelServiceName] != "" {
			s.queue.Add(o.GetNamespace() + "/" + o.GetLabels()[LabelServiceName])
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: byLabel, UpdateFunc: func(_, o any) { byLabel(o) }, DeleteFunc: byLabel}
	for _, inf := range []cache.SharedIndexInformer{siInf.Informer(), sliceInf.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("kube sink: watch: %w", err)
		}
	}
	// A derived Service's ClusterIP is the import's address: tell the
	// federator when one appears or changes.
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { byLabel(o); kick() },
		UpdateFunc: func(old, o any) {
			byLabel(o)
			if old.(*corev1.Service).Spec.ClusterIP != o.(*corev1.Service).Spec.ClusterIP {
				kick()
			}
		},
		DeleteFunc: func(o any) { byLabel(o); kick() },
	}); err != nil {
		return fmt.Errorf("kube sink: watch Services: %w", err)
	}

	nf, nsSynced, err := s.watchNamespaces()
	if err != nil {
		return err
	}
	synced = append(synced, nsSynced)

	var gwf kubeinformers.SharedInformerFactory
	if s.cfg.GatewayService != "" {
		gwNS, gwName, _ := cache.SplitMetaNamespaceKey(s.cfg.GatewayService)
		gwf = kubeinformers.NewSharedInformerFactoryWithOptions(s.cfg.Kube, 0, kubeinformers.WithNamespace(gwNS),
			kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.LabelSelector = klabels.SelectorFromSet(klabels.Set{labelSliceService: gwName}).String()
			}))
		gwInf := gwf.Discovery().V1().EndpointSlices()
		s.gwSlices = gwInf.Lister()
		synced = append(synced, gwInf.Informer().HasSynced)
		all := func(any) { s.enqueueAll() }
		if _, err := gwInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: all, UpdateFunc: func(_, o any) { all(o) }, DeleteFunc: all,
		}); err != nil {
			return fmt.Errorf("kube sink: watch gateway endpoints: %w", err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer s.queue.ShutDown()
	kf.Start(ctx.Done())
	mf.Start(ctx.Done())
	nf.Start(ctx.Done())
	defer kf.Shutdown()
	defer mf.Shutdown()
	defer nf.Shutdown()
	if gwf != nil {
		gwf.Start(ctx.Done())
		defer gwf.Shutdown()
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("kube sink: informer caches did not sync")
	}
	s.ready.Store(true)
	defer s.ready.Store(false)
	kick()
	// Everything we own or should own is reconciled once: this also
	// garbage-collects objects left behind by a crash.
	s.enqueueAll()
	s.initial.Store(int64(s.queue.Len()))
	for range s.cfg.Workers {
		wg.Go(func() { s.work(ctx) })
	}
	var prev map[catalog.ServiceKey]*causewayv1.ImportRecord
	for {
		changed := feed.Changed()
		cur := feed.View().Imports(s.cfg.Cluster)
		for k, imp := range cur {
			if prev == nil || prev[k] != imp {
				s.queue.Add(k.String())
			}
		}
		for k := range prev {
			if _, ok := cur[k]; !ok {
				s.queue.Add(k.String())
			}
		}
		prev = cur
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// enqueueAll queues every import of the view and every object we own.
func (s *Sink) enqueueAll() {
	if s.feed == nil || s.queue == nil {
		return
	}
	for k := range s.feed.View().Imports(s.cfg.Cluster) {
		s.queue.Add(k.String())
	}
	if sis, err := s.imports.List(klabels.Everything()); err == nil {
		for _, si := range sis {
			s.queue.Add(si.Namespace + "/" + si.Labels[LabelServiceName])
		}
	}
	if svcs, err := s.services.List(klabels.Everything()); err == nil {
		for _, svc := range svcs {
			s.queue.Add(svc.Namespace + "/" + svc.Labels[LabelServiceName])
		}
	}
	if slices, err := s.slices.List(klabels.Everything()); err == nil {
		for _, es := range slices {
			s.queue.Add(es.Namespace + "/" + es.Labels[LabelServiceName])
		}
	}
}

func (s *Sink) work(ctx context.Context) {
	for {
		key, shutdown := s.queue.Get()
		if shutdown {
			return
		}
		s.inflight.Add(1)
		if err := s.reconcile(ctx, key); err != nil && ctx.Err() == nil {
			s.log.Warn("reconcile import failed; retrying", "service", key, "err", err)
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
		s.reconciled.Add(1)
		s.inflight.Add(-1)
	}
}

// reconcile makes the cluster's objects for one service match its import.
func (s *Sink) reconcile(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil || ns == "" || name == "" {
		return nil
	}
	imp, ok := s.feed.View().Import(s.cfg.Cluster, catalog.ServiceKey{Namespace: ns, Name: name})
	if !ok {
		s.waiting.Delete(key)
		return s.remove(ctx, ns, name)
	}
	svc, err := s.applyService(ctx, imp)
	if err == nil && svc != nil {
		if err = s.applySlices(ctx, imp); err == nil {
			err = s.applyServiceImport(ctx, imp, svc)
		}
	}
	if errors.Is(err, errNamespaceAbsent) {
		s.waitingForNamespace(key, ns)
		return nil
	}
	if err == nil && svc != nil {
		s.waiting.Delete(key)
	}
	return err // svc == nil: name taken by a Service that is not ours (logged)
}

// remove deletes every object of ns/name this sink owns.
func (s *Sink) remove(ctx context.Context, ns, name string) error {
	if si, err := s.imports.ServiceImports(ns).Get(name); err == nil && ours(si.Labels, s.cfg.Cluster) {
		if err := s.cfg.MCS.MulticlusterV1beta1().ServiceImports(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete ServiceImport %s/%s: %w", ns, name, err)
		}
		s.writes.Add(1)
		s.log.Info("ServiceImport removed", "service", ns+"/"+name)
	}
	if svc, err := s.services.Services(ns).Get(DerivedName(name)); err == nil && ours(svc.Labels, s.cfg.Cluster) && svc.Labels[LabelServiceName] == name {
		if err := s.cfg.Kube.CoreV1().Services(ns).Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete derived Service %s/%s: %w", ns, svc.Name, err)
		}
		s.writes.Add(1)
	}
	return s.pruneSlices(ctx, ns, name, nil)
}

// applyService applies the derived Service when it differs from what it
// should be and returns the current object (nil when the name is taken).
func (s *Sink) applyService(ctx context.Context, imp *causewayv1.ImportRecord) (*corev1.Service, error) {
	ns, dname := imp.GetNamespace(), DerivedName(imp.GetName())
	headless := imp.GetType() == causewayv1.ServiceType_SERVICE_TYPE_HEADLESS
	have, err := s.services.Services(ns).Get(dname)
	if err == nil && !ours(have.Labels, s.cfg.Cluster) {
		s.log.Warn("derived Service name taken by a Service Causeway does not manage; not importing",
			"service", ns+"/"+imp.GetName(), "derived", dname)
		return nil, nil
	}
	ports := make([]*corev1ac.ServicePortApplyConfiguration, 0, len(imp.GetPorts()))
	for _, p := range imp.GetPorts() {
		target := int32(p.GetPort())
		if e := egressPort(imp, p); e != 0 {
			target = int32(e)
		}
		pa := corev1ac.ServicePort().WithName(p.GetName()).WithProtocol(kubeProtocol(p.GetProtocol())).
			WithPort(int32(p.GetPort())).WithTargetPort(intstr.FromInt32(target))
		if p.GetAppProtocol() != "" {
			pa.WithAppProtocol(p.GetAppProtocol())
		}
		ports = append(ports, pa)
	}
	spec := corev1ac.ServiceSpec().WithType(corev1.ServiceTypeClusterIP).WithPorts(ports...)
	affinity := corev1.ServiceAffinityNone
	if imp.GetSessionAffinity() == string(corev1.ServiceAffinityClientIP) {
		affinity = corev1.ServiceAffinityClientIP
		if t := imp.GetSessionAffinityTimeoutSeconds(); t > 0 {
			spec.WithSessionAffinityConfig(corev1ac.SessionAffinityConfig().WithClientIP(corev1ac.ClientIPConfig().WithTimeoutSeconds(int32(t))))
		}
	}
	spec.WithSessionAffinity(affinity)
	if headless {
		spec.WithClusterIP(corev1.ClusterIPNone).WithPublishNotReadyAddresses(false)
	}
	if err == nil && serviceMatches(have, imp, headless, affinity) {
		return have, nil
	}
	if err == nil && (have.Spec.ClusterIP == corev1.ClusterIPNone) != headless {
		// clusterIP is immutable: a type change replaces the Service.
		if err := s.cfg.Kube.CoreV1().Services(ns).Delete(ctx, dname, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("replace derived Service %s/%s: %w", ns, dname, err)
		}
	}
	ac := corev1ac.Service(dname, ns).WithLabels(labels(s.cfg.Cluster, imp.GetName())).WithSpec(spec)
	svc, err := s.cfg.Kube.CoreV1().Services(ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if gone := s.namespaceGone(ns, err); gone != nil {
		return nil, gone
	}
	if err != nil {
		return nil, fmt.Errorf("apply derived Service %s/%s: %w", ns, dname, err)
	}
	s.writes.Add(1)
	return svc, nil
}

func serviceMatches(have *corev1.Service, imp *causewayv1.ImportRecord, headless bool, affinity corev1.ServiceAffinity) bool {
	if !labelsInclude(have.Labels, labels(have.Labels[LabelImportingCluster], imp.GetName())) ||
		(have.Spec.ClusterIP == corev1.ClusterIPNone) != headless || have.Spec.SessionAffinity != affinity ||
		len(have.Spec.Ports) != len(imp.GetPorts()) {
		return false
	}
	if affinity == corev1.ServiceAffinityClientIP && imp.GetSessionAffinityTimeoutSeconds() > 0 {
		c := have.Spec.SessionAffinityConfig
		if c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil || uint32(*c.ClientIP.TimeoutSeconds) != imp.GetSessionAffinityTimeoutSeconds() {
			return false
		}
	}
	for i, p := range imp.GetPorts() {
		hp := have.Spec.Ports[i]
		target := int32(p.GetPort())
		if e := egressPort(imp, p); e != 0 {
			target = int32(e)
		}
		app := ""
		if hp.AppProtocol != nil {
			app = *hp.AppProtocol
		}
		if hp.Name != p.GetName() || hp.Protocol != kubeProtocol(p.GetProtocol()) || hp.Port != int32(p.GetPort()) ||
			hp.TargetPort != intstr.FromInt32(target) || app != p.GetAppProtocol() {
			return false
		}
	}
	return true
}

// desiredSlice is one EndpointSlice the sink wants.
type desiredSlice struct {
	name, sourceCluster string
	family              discoveryv1.AddressType
	endpoints           []discoveryv1.Endpoint
	ports               []discoveryv1.EndpointPort
}

// applySlices applies the EndpointSlices of imp and deletes the ones it
// no longer has.
func (s *Sink) applySlices(ctx context.Context, imp *causewayv1.ImportRecord) error {
	want := s.desiredSlices(imp)
	names := map[string]bool{}
	for _, d := range want {
		names[d.name] = true
		if err := s.applySlice(ctx, imp, d); err != nil {
			return err
		}
	}
	return s.pruneSlices(ctx, imp.GetNamespace(), imp.GetName(), names)
}

func (s *Sink) desiredSlices(imp *causewayv1.ImportRecord) []desiredSlice {
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
		v := s.feed.View()
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
	for _, a := range s.gatewayAddrs() {
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
	add(dname+"-gateway", s.cfg.Cluster, addrs, ports)
	return out
}

type endpointAddr struct {
	addr     netip.Addr
	ready    bool
	hostname string
}

// gatewayAddrs are the ready addresses of the local gateway's Service.
func (s *Sink) gatewayAddrs() []netip.Addr {
	if s.gwSlices == nil {
		return nil
	}
	slices, err := s.gwSlices.List(klabels.Everything())
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

func (s *Sink) applySlice(ctx context.Context, imp *causewayv1.ImportRecord, d desiredSlice) error {
	ns := imp.GetNamespace()
	lbl := labels(s.cfg.Cluster, imp.GetName())
	lbl[LabelSourceCluster] = d.sourceCluster
	lbl[labelSliceService] = DerivedName(imp.GetName())
	if have, err := s.slices.EndpointSlices(ns).Get(d.name); err == nil && labelsInclude(have.Labels, lbl) &&
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
	if _, err := s.cfg.Kube.DiscoveryV1().EndpointSlices(ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		if gone := s.namespaceGone(ns, err); gone != nil {
			return gone
		}
		return fmt.Errorf("apply EndpointSlice %s/%s: %w", ns, d.name, err)
	}
	s.writes.Add(1)
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
func (s *Sink) pruneSlices(ctx context.Context, ns, name string, keep map[string]bool) error {
	have, err := s.slices.EndpointSlices(ns).List(klabels.SelectorFromSet(klabels.Set{LabelServiceName: name}))
	if err != nil {
		return nil
	}
	for _, es := range have {
		if keep[es.Name] || !ours(es.Labels, s.cfg.Cluster) {
			continue
		}
		if err := s.cfg.Kube.DiscoveryV1().EndpointSlices(ns).Delete(ctx, es.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete EndpointSlice %s/%s: %w", ns, es.Name, err)
		}
		s.writes.Add(1)
	}
	return nil
}

// applyServiceImport applies the ServiceImport's spec and status when they
// differ from what they should be.
func (s *Sink) applyServiceImport(ctx context.Context, imp *causewayv1.ImportRecord, svc *corev1.Service) error {
	ns, name := imp.GetNamespace(), imp.GetName()
	spec := mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.ClusterSetIP, SessionAffinity: corev1.ServiceAffinityNone}
	if imp.GetType() == causewayv1.ServiceType_SERVICE_TYPE_HEADLESS {
		spec.Type = mcsv1beta1.Headless
	}
	for _, p := range imp.GetPorts() {
		sp := mcsv1beta1.ServicePort{Name: p.GetName(), Protocol: kubeProtocol(p.GetProtocol()), Port: int32(p.GetPort())}
		if p.GetAppProtocol() != "" {
			sp.AppProtocol = ptr(p.GetAppProtocol())
		}
		spec.Ports = append(spec.Ports, sp)
	}
	ready := metav1.Condition{Type: string(mcsv1beta1.ServiceImportConditionReady), Status: metav1.ConditionTrue,
		Reason: string(mcsv1beta1.ServiceImportReasonReady), Message: "the derived Service " + svc.Name + " is in place"}
	if spec.Type == mcsv1beta1.ClusterSetIP {
		if svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			spec.IPs = []string{svc.Spec.ClusterIP}
		} else {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, string(mcsv1beta1.ServiceImportReasonPending), "waiting for the derived Service's ClusterIP"
		}
	}
	if imp.GetSessionAffinity() == string(corev1.ServiceAffinityClientIP) {
		spec.SessionAffinity = corev1.ServiceAffinityClientIP
		if t := imp.GetSessionAffinityTimeoutSeconds(); t > 0 {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(t))}}
		}
	}
	clusters := make([]mcsv1beta1.ClusterStatus, 0, len(imp.GetClusters()))
	for _, c := range imp.GetClusters() {
		clusters = append(clusters, mcsv1beta1.ClusterStatus{Cluster: c})
	}
	lbl := labels(s.cfg.Cluster, name)

	have, err := s.imports.ServiceImports(ns).Get(name)
	exists := err == nil
	if exists && !ours(have.Labels, s.cfg.Cluster) {
		s.log.Warn("ServiceImport exists and is not managed by Causeway; leaving it", "service", ns+"/"+name)
		return nil
	}
	if !exists || !labelsInclude(have.Labels, lbl) || !apiequality.Semantic.DeepEqual(normImportSpec(have.Spec), normImportSpec(spec)) {
		if err := s.applyImportPart(ctx, ns, name, "", map[string]any{"metadata": map[string]any{"name": name, "namespace": ns, "labels": lbl}, "spec": spec}); err != nil {
			return err
		}
	}
	if exists {
		cur := findCondition(have.Status.Conditions, ready.Type)
		if apiequality.Semantic.DeepEqual(have.Status.Clusters, clusters) && cur != nil &&
			cur.Status == ready.Status && cur.Reason == ready.Reason && cur.Message == ready.Message {
			return nil
		}
		if cur != nil && cur.Status == ready.Status {
			ready.LastTransitionTime = cur.LastTransitionTime
		}
	}
	if ready.LastTransitionTime.IsZero() {
		ready.LastTransitionTime = metav1.Now()
	}
	return s.applyImportPart(ctx, ns, name, "status", map[string]any{"metadata": map[string]any{"name": name, "namespace": ns},
		"status": map[string]any{"clusters": clusters, "conditions": []metav1.Condition{ready}}})
}

func (s *Sink) applyImportPart(ctx context.Context, ns, name, sub string, obj map[string]any) error {
	obj["apiVersion"] = mcsv1beta1.GroupVersion.String()
	obj["kind"] = mcsv1beta1.ServiceImportKindName
	body, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var subs []string
	if sub != "" {
		subs = []string{sub}
	}
	_, err = s.cfg.MCS.MulticlusterV1beta1().ServiceImports(ns).Patch(ctx, name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)}, subs...)
	if sub == "" {
		if gone := s.namespaceGone(ns, err); gone != nil {
			return gone
		}
	}
	if err != nil {
		return fmt.Errorf("apply ServiceImport %s/%s %s: %w", ns, name, sub, err)
	}
	s.writes.Add(1)
	return nil
}

func normImportSpec(s mcsv1beta1.ServiceImportSpec) mcsv1beta1.ServiceImportSpec {
	if len(s.IPs) == 0 {
		s.IPs = nil
	}
	if len(s.Ports) == 0 {
		s.Ports = nil
	}
	if s.SessionAffinity == "" {
		s.SessionAffinity = corev1.ServiceAffinityNone
	}
	s.IPFamilies, s.InternalTrafficPolicy, s.TrafficDistribution = nil, nil, nil
	return s
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

func labelsInclude(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func egressPort(imp *causewayv1.ImportRecord, p *causewayv1.ServicePort) uint32 {
	for _, e := range imp.GetEgressPorts() {
		if e.GetProtocol() == p.GetProtocol() && e.GetPort() == p.GetPort() {
			return e.GetEgressPort()
		}
	}
	return 0
}

func kubeProtocol(p causewayv1.Protocol) corev1.Protocol {
	switch p {
	case causewayv1.Protocol_PROTOCOL_UDP:
		return corev1.ProtocolUDP
	case causewayv1.Protocol_PROTOCOL_SCTP:
		return corev1.ProtocolSCTP
	default:
		return corev1.ProtocolTCP
	}
}
