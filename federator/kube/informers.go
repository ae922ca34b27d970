package kube

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	kubeinformers "k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"
	mcsinformers "sigs.k8s.io/mcs-api/pkg/client/informers/externalversions"
	mcsinformersv1beta1 "sigs.k8s.io/mcs-api/pkg/client/informers/externalversions/apis/v1beta1"
)

// informerFactory is what a shared informer factory (core or mcs-api) is
// to its owner.
type informerFactory interface {
	Start(stopCh <-chan struct{})
	Shutdown()
}

// informerSet is informers' factories and what says they have synced.
type informerSet struct {
	factories []informerFactory
	synced    []cache.InformerSynced
}

// start starts every factory's informers until ctx ends; stop waits for
// them after ctx has ended (it cancels nothing itself).
func (s *informerSet) start(ctx context.Context) (stop func()) {
	for _, f := range s.factories {
		f.Start(ctx.Done())
	}
	return func() {
		for _, f := range s.factories {
			f.Shutdown()
		}
	}
}

// sinkInformers are the informers a Sink reads. Imports, services and
// slices see only the objects this cluster's sink owns (by label);
// namespaces sees every Namespace; gatewaySlices, nil without a gateway
// Service, sees that Service's EndpointSlices.
type sinkInformers struct {
	informerSet
	imports       mcsinformersv1beta1.ServiceImportInformer
	services      coreinformers.ServiceInformer
	slices        discoveryinformers.EndpointSliceInformer
	namespaces    coreinformers.NamespaceInformer
	gatewaySlices discoveryinformers.EndpointSliceInformer
}

// newSinkInformers builds, unstarted, the informers a Sink of cfg reads.
// cfg is validated (NewSink).
func newSinkInformers(cfg SinkConfig) *sinkInformers {
	owned := func(o *metav1.ListOptions) {
		o.LabelSelector = klabels.SelectorFromSet(klabels.Set{LabelManagedBy: ManagedByValue, LabelImportingCluster: cfg.Cluster}).String()
	}
	kf := kubeinformers.NewSharedInformerFactoryWithOptions(cfg.Kube, 0, kubeinformers.WithTweakListOptions(owned))
	mf := mcsinformers.NewSharedInformerFactoryWithOptions(cfg.MCS, 0, mcsinformers.WithTweakListOptions(owned))
	nf := kubeinformers.NewSharedInformerFactory(cfg.Kube, 0)
	i := &sinkInformers{
		imports:    mf.Multicluster().V1beta1().ServiceImports(),
		services:   kf.Core().V1().Services(),
		slices:     kf.Discovery().V1().EndpointSlices(),
		namespaces: nf.Core().V1().Namespaces(),
	}
	i.factories = []informerFactory{kf, mf, nf}
	if cfg.GatewayService != "" {
		gwNS, gwName, _ := cache.SplitMetaNamespaceKey(cfg.GatewayService)
		gf := kubeinformers.NewSharedInformerFactoryWithOptions(cfg.Kube, 0, kubeinformers.WithNamespace(gwNS),
			kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.LabelSelector = klabels.SelectorFromSet(klabels.Set{labelSliceService: gwName}).String()
			}))
		i.gatewaySlices = gf.Discovery().V1().EndpointSlices()
		i.factories = append(i.factories, gf)
	}
	// Informer() registers each informer with its factory, so Start starts
	// exactly these.
	for _, inf := range i.all() {
		i.synced = append(i.synced, inf.HasSynced)
	}
	return i
}

func (i *sinkInformers) all() []cache.SharedIndexInformer {
	out := []cache.SharedIndexInformer{i.imports.Informer(), i.services.Informer(), i.slices.Informer(), i.namespaces.Informer()}
	if i.gatewaySlices != nil {
		out = append(out, i.gatewaySlices.Informer())
	}
	return out
}

// sourceInformers are the informers a Source reads: every ServiceExport,
// Service and EndpointSlice of the cluster.
type sourceInformers struct {
	informerSet
	exports  mcsinformersv1beta1.ServiceExportInformer
	services coreinformers.ServiceInformer
	slices   discoveryinformers.EndpointSliceInformer
}

// newSourceInformers builds, unstarted, the informers a Source reads.
func newSourceInformers(kube kubernetes.Interface, mcs mcsclient.Interface) *sourceInformers {
	kf := kubeinformers.NewSharedInformerFactory(kube, 0)
	mf := mcsinformers.NewSharedInformerFactory(mcs, 0)
	i := &sourceInformers{
		exports:  mf.Multicluster().V1beta1().ServiceExports(),
		services: kf.Core().V1().Services(),
		slices:   kf.Discovery().V1().EndpointSlices(),
	}
	i.factories = []informerFactory{kf, mf}
	i.synced = []cache.InformerSynced{i.exports.Informer().HasSynced, i.services.Informer().HasSynced, i.slices.Informer().HasSynced}
	return i
}
