package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator"
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
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

// SourceConfig configures a Source.
type SourceConfig struct {
	// Cluster is this cluster's name. Required.
	Cluster string
	// DefaultZone is the zone of endpoints whose EndpointSlice names none.
	DefaultZone string
	// Kube and MCS are clients of this cluster's apiserver. Required.
	Kube kubernetes.Interface
	MCS  mcsclient.Interface
	// Feed is the federator's mirror of the federation; the Ready and
	// Conflict conditions are read from it. Required.
	Feed *catalog.Feed
	// Workers is the number of reconcile workers; default 4.
	Workers int
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
}

// Source is the federator's export source for a Kubernetes cluster: it
// turns ServiceExports into export records and keeps their Valid, Ready
// and Conflict conditions as mcs-api v1beta1 defines them.
type Source struct {
	cfg SourceConfig
	log *slog.Logger

	exports   mcslisters.ServiceExportLister
	services  corelisters.ServiceLister
	slices    discoverylisters.EndpointSliceLister
	queue     workqueue.TypedRateLimitingInterface[string]
	publishCh chan struct{}

	mu      sync.Mutex
	records map[string]*causewayv1.ExportRecord // by ns/name
}

var _ federator.ExportSource = (*Source)(nil)

// NewSource returns a Source for cfg.
func NewSource(cfg SourceConfig) (*Source, error) {
	switch {
	case cfg.Cluster == "":
		return nil, errors.New("kube source: no cluster name")
	case cfg.Kube == nil || cfg.MCS == nil:
		return nil, errors.New("kube source: no Kubernetes client")
	case cfg.Feed == nil:
		return nil, errors.New("kube source: no catalog feed")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Source{cfg: cfg, log: log.With("component", "kube-source", "cluster", cfg.Cluster)}, nil
}

// Run watches the cluster and publishes its export set until ctx ends.
func (s *Source) Run(ctx context.Context, publish func(context.Context, []*causewayv1.ExportRecord) error, onError func(error)) error {
	kf := kubeinformers.NewSharedInformerFactory(s.cfg.Kube, 0)
	mf := mcsinformers.NewSharedInformerFactory(s.cfg.MCS, 0)
	seInf := mf.Multicluster().V1beta1().ServiceExports()
	svcInf := kf.Core().V1().Services()
	sliceInf := kf.Discovery().V1().EndpointSlices()
	s.exports, s.services, s.slices = seInf.Lister(), svcInf.Lister(), sliceInf.Lister()
	s.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "causeway-exports"})
	s.publishCh = make(chan struct{}, 1)
	s.records = map[string]*causewayv1.ExportRecord{}

	enqueueObj := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			s.queue.Add(key)
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc: enqueueObj, UpdateFunc: func(_, o any) { enqueueObj(o) }, DeleteFunc: enqueueObj,
	}
	enqueueSlice := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if es, ok := obj.(*discoveryv1.EndpointSlice); ok && es.Labels[labelSliceService] != "" {
			s.queue.Add(es.Namespace + "/" + es.Labels[labelSliceService])
		}
	}
	if _, err := seInf.Informer().AddEventHandler(handler); err != nil {
		return fmt.Errorf("watch ServiceExports: %w", err)
	}
	if _, err := svcInf.Informer().AddEventHandler(handler); err != nil {
		return fmt.Errorf("watch Services: %w", err)
	}
	if _, err := sliceInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueueSlice, UpdateFunc: func(_, o any) { enqueueSlice(o) }, DeleteFunc: enqueueSlice,
	}); err != nil {
		return fmt.Errorf("watch EndpointSlices: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer s.queue.ShutDown()
	kf.Start(ctx.Done())
	mf.Start(ctx.Done())
	defer kf.Shutdown()
	defer mf.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), seInf.Informer().HasSynced, svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("kube source: informer caches did not sync")
	}
	s.log.Info("informers synced; reconciling exports")
	// Every ServiceExport that exists now is reconciled before the first
	// publish, so a restart never publishes a partial set.
	all, err := s.exports.List(klabels.Everything())
	if err != nil {
		return fmt.Errorf("list ServiceExports: %w", err)
	}
	for _, se := range all {
		s.reconcile(ctx, se.Namespace+"/"+se.Name)
	}
	if err := publish(ctx, s.snapshot()); err != nil {
		onError(err)
	}
	for range s.cfg.Workers {
		wg.Go(func() { s.work(ctx) })
	}
	wg.Go(func() { s.watchFeed(ctx) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.publishCh:
		}
		if err := publish(ctx, s.snapshot()); err != nil {
			onError(err)
		}
		// Coalesce bursts (informer start, mass updates) into one publish
		// per 50ms.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Source) work(ctx context.Context) {
	for {
		key, shutdown := s.queue.Get()
		if shutdown {
			return
		}
		if err := s.reconcile(ctx, key); err != nil && ctx.Err() == nil {
			s.log.Warn("reconcile export failed; retrying", "service", key, "err", err)
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

// watchFeed requeues the exports whose federation state changed: their
// Ready and Conflict conditions depend on it.
func (s *Source) watchFeed(ctx context.Context) {
	var prev *catalog.View
	for {
		changed := s.cfg.Feed.Changed()
		v := s.cfg.Feed.View()
		for _, k := range changedServices(prev, v) {
			if _, err := s.exports.ServiceExports(k.Namespace).Get(k.Name); err == nil {
				s.queue.Add(k.String())
			}
		}
		prev = v
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// changedServices lists the services whose set of export records differs
// between two views (records are shared between views when unchanged).
func changedServices(prev, v *catalog.View) []catalog.ServiceKey {
	var out []catalog.ServiceKey
	seen := map[catalog.ServiceKey]bool{}
	for _, k := range v.ExportedServices() {
		seen[k] = true
		if prev == nil || !sameRecords(prev.Exports(k), v.Exports(k)) {
			out = append(out, k)
		}
	}
	if prev != nil {
		for _, k := range prev.ExportedServices() {
			if !seen[k] {
				out = append(out, k)
			}
		}
	}
	return out
}

func sameRecords(a, b []*causewayv1.ExportRecord) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (s *Source) snapshot() []*causewayv1.ExportRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*causewayv1.ExportRecord, 0, len(s.records))
	for _, r := range s.records {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GetNamespace() != out[j].GetNamespace() {
			return out[i].GetNamespace() < out[j].GetNamespace()
		}
		return out[i].GetName() < out[j].GetName()
	})
	return out
}

// setRecord records the export of key (nil: not exported) and schedules a
// publish when that changed the set.
func (s *Source) setRecord(key string, rec *causewayv1.ExportRecord) {
	s.mu.Lock()
	old, had := s.records[key]
	if rec == nil {
		delete(s.records, key)
	} else {
		s.records[key] = rec
	}
	s.mu.Unlock()
	if (rec == nil && !had) || (rec != nil && had && protoEqual(old, rec)) {
		return
	}
	select {
	case s.publishCh <- struct{}{}:
	default:
	}
}

// reconcile computes the export record of one ServiceExport and sets its
// conditions. Idempotent; writes the status only when it changes.
func (s *Source) reconcile(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not ours to retry
	}
	se, err := s.exports.ServiceExports(ns).Get(name)
	if apierrors.IsNotFound(err) {
		s.setRecord(key, nil)
		return nil
	}
	if err != nil {
		return err
	}
	var conds []metav1.Condition
	svc, err := s.services.Services(ns).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		s.setRecord(key, nil)
		conds = invalid(se, mcsv1beta1.ServiceExportReasonNoService,
			fmt.Sprintf("Service %s/%s does not exist", ns, name))
	case err != nil:
		return err
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		s.setRecord(key, nil)
		conds = invalid(se, mcsv1beta1.ServiceExportReasonInvalidServiceType,
			fmt.Sprintf("Service %s/%s has type ExternalName, which cannot be exported", ns, name))
	default:
		rec, problem := s.record(se, svc)
		if problem != "" {
			s.setRecord(key, nil)
			conds = invalid(se, "InvalidAnnotation", problem)
			break
		}
		s.setRecord(key, rec)
		conds = s.validConditions(se, rec)
	}
	return s.writeConditions(ctx, se, conds)
}

func invalid(se *mcsv1beta1.ServiceExport, reason mcsv1beta1.ServiceExportConditionReason, msg string) []metav1.Condition {
	return []metav1.Condition{
		{Type: string(mcsv1beta1.ServiceExportConditionValid), Status: metav1.ConditionFalse, Reason: string(reason), Message: msg, ObservedGeneration: se.Generation},
		{Type: string(mcsv1beta1.ServiceExportConditionReady), Status: metav1.ConditionFalse, Reason: string(mcsv1beta1.ServiceExportReasonFailed),
			Message: "not exported: " + msg, ObservedGeneration: se.Generation},
	}
}

// validConditions are the conditions of an exportable ServiceExport: Ready
// once the federation holds its record, Conflict from all the service's
// exports.
func (s *Source) validConditions(se *mcsv1beta1.ServiceExport, rec *causewayv1.ExportRecord) []metav1.Condition {
	gen := se.Generation
	conds := []metav1.Condition{{Type: string(mcsv1beta1.ServiceExportConditionValid), Status: metav1.ConditionTrue,
		Reason: string(mcsv1beta1.ServiceExportReasonValid), Message: "the Service can be exported", ObservedGeneration: gen}}
	v := s.cfg.Feed.View()
	k := catalog.ServiceKey{Namespace: se.Namespace, Name: se.Name}
	have, ok := v.Export(k, s.cfg.Cluster)
	if !ok || !federator.SameExport(have, rec) {
		return append(conds, metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionReady), Status: metav1.ConditionFalse,
			Reason: string(mcsv1beta1.ServiceExportReasonPending), Message: "waiting for the export to reach the federation", ObservedGeneration: gen})
	}
	exporters := v.Exports(k)
	clusters := make([]string, len(exporters))
	for i, x := range exporters {
		clusters[i] = x.GetCluster()
	}
	sort.Strings(clusters)
	conds = append(conds, metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionReady), Status: metav1.ConditionTrue,
		Reason: string(mcsv1beta1.ServiceExportReasonExported), ObservedGeneration: gen,
		Message: fmt.Sprintf("exported to the clusterset; exporting clusters: %v", clusters)})
	conflicts := federator.Conflicts(exporters)
	reason, msg := federator.ConflictCondition(conflicts)
	status := metav1.ConditionFalse
	if len(conflicts) > 0 {
		status = metav1.ConditionTrue
	}
	return append(conds, metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionConflict), Status: status,
		Reason: reason, Message: msg, ObservedGeneration: gen})
}

// writeConditions applies conds to se's status when they differ from what
// it has. Transition times are kept for unchanged statuses.
func (s *Source) writeConditions(ctx context.Context, se *mcsv1beta1.ServiceExport, conds []metav1.Condition) error {
	next := append([]metav1.Condition(nil), se.Status.Conditions...)
	for _, c := range conds {
		meta.SetStatusCondition(&next, c)
	}
	if !hasCondition(conds, mcsv1beta1.ServiceExportConditionConflict) {
		meta.RemoveStatusCondition(&next, string(mcsv1beta1.ServiceExportConditionConflict))
	}
	if apiequality.Semantic.DeepEqual(next, se.Status.Conditions) {
		return nil
	}
	// Apply the full set we own (Valid, Ready, Conflict), with the
	// transition times SetStatusCondition kept.
	owned := make([]metav1.Condition, 0, len(conds))
	for _, c := range conds {
		owned = append(owned, *meta.FindStatusCondition(next, c.Type))
	}
	body, err := json.Marshal(map[string]any{
		"apiVersion": mcsv1beta1.GroupVersion.String(), "kind": mcsv1beta1.ServiceExportKindName,
		"metadata": map[string]any{"name": se.Name, "namespace": se.Namespace},
		"status":   map[string]any{"conditions": owned},
	})
	if err != nil {
		return err
	}
	_, err = s.cfg.MCS.MulticlusterV1beta1().ServiceExports(se.Namespace).Patch(ctx, se.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)}, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set conditions of ServiceExport %s/%s: %w", se.Namespace, se.Name, err)
	}
	return nil
}

func hasCondition(conds []metav1.Condition, t mcsv1beta1.ServiceExportConditionType) bool {
	for _, c := range conds {
		if c.Type == string(t) {
			return true
		}
	}
	return false
}

// record builds the export record of a valid ServiceExport; a non-empty
// problem means an annotation is invalid.
func (s *Source) record(se *mcsv1beta1.ServiceExport, svc *corev1.Service) (*causewayv1.ExportRecord, string) {
	rec := &causewayv1.ExportRecord{
		Namespace: se.Namespace, Name: se.Name, Cluster: s.cfg.Cluster,
		Type:            causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP,
		SessionAffinity: string(svc.Spec.SessionAffinity),
		Created:         timestamppb.New(se.CreationTimestamp.Time),
		ReadyPerZone:    map[string]uint32{},
	}
	if rec.SessionAffinity == "" {
		rec.SessionAffinity = string(corev1.ServiceAffinityNone)
	}
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP && svc.Spec.SessionAffinityConfig != nil &&
		svc.Spec.SessionAffinityConfig.ClientIP != nil && svc.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds != nil {
		rec.SessionAffinityTimeoutSeconds = uint32(*svc.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds)
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		rec.Type = causewayv1.ServiceType_SERVICE_TYPE_HEADLESS
	} else {
		rec.ClusterIp = svc.Spec.ClusterIP
	}
	switch r := se.Annotations[AnnotationRouting]; r {
	case "", "gateway":
		rec.Routing = causewayv1.RoutingPolicy_ROUTING_POLICY_GATEWAY
	case "local-direct":
		rec.Routing = causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT
	default:
		return nil, fmt.Sprintf("annotation %s=%q: want gateway or local-direct", AnnotationRouting, r)
	}
	for _, p := range svc.Spec.Ports {
		sp := &causewayv1.ServicePort{Name: p.Name, Protocol: protocol(p.Protocol), Port: uint32(p.Port)}
		if p.AppProtocol != nil {
			sp.AppProtocol = *p.AppProtocol
		}
		rec.Ports = append(rec.Ports, sp)
	}
	slices, err := s.slices.EndpointSlices(se.Namespace).List(klabels.SelectorFromSet(klabels.Set{labelSliceService: se.Name}))
	if err != nil {
		return rec, ""
	}
	sort.Slice(slices, func(i, j int) bool { return slices[i].Name < slices[j].Name })
	seen := map[string]bool{}
	for _, es := range slices {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		targets := targetPorts(svc, es)
		for _, ep := range es.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
				ready = false
			}
			zone := s.cfg.DefaultZone
			if ep.Zone != nil && *ep.Zone != "" {
				zone = *ep.Zone
			}
			hostname := ""
			if ep.Hostname != nil {
				hostname = *ep.Hostname
			}
			for _, addr := range ep.Addresses {
				if seen[addr] {
					continue
				}
				seen[addr] = true
				rec.Endpoints = append(rec.Endpoints, &causewayv1.Endpoint{
					Address: addr, Hostname: hostname, Zone: zone, Ready: ready, TargetPorts: targets,
				})
				if ready {
					rec.ReadyPerZone[zone]++
				}
			}
		}
	}
	return rec, ""
}

// targetPorts maps the service's port names (and numbers) to the ports
// the slice's endpoints listen on, where they differ.
func targetPorts(svc *corev1.Service, es *discoveryv1.EndpointSlice) map[string]uint32 {
	var out map[string]uint32
	for _, sp := range svc.Spec.Ports {
		for _, ep := range es.Ports {
			name := ""
			if ep.Name != nil {
				name = *ep.Name
			}
			if name != sp.Name || ep.Port == nil || *ep.Port == sp.Port {
				continue
			}
			if out == nil {
				out = map[string]uint32{}
			}
			key := sp.Name
			if key == "" {
				key = strconv.Itoa(int(sp.Port))
			}
			out[key] = uint32(*ep.Port)
		}
	}
	return out
}

func protocol(p corev1.Protocol) causewayv1.Protocol {
	switch p {
	case corev1.ProtocolUDP:
		return causewayv1.Protocol_PROTOCOL_UDP
	case corev1.ProtocolSCTP:
		return causewayv1.Protocol_PROTOCOL_SCTP
	default:
		return causewayv1.Protocol_PROTOCOL_TCP
	}
}

func ptr[T any](v T) *T { return &v }
