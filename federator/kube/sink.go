package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"
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
//
// The federator runs the sink for each leadership term; each Run builds
// its informers (newSinkInformers) and an importer, the controller that
// reads them, and the Sink answers Addresses and Settled from the running
// one.
type Sink struct {
	cfg SinkConfig
	log *slog.Logger

	cur    atomic.Pointer[importer] // the running term's controller; nil between terms
	writes atomic.Int64
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
	return &Sink{cfg: cfg, log: log.With("component", "kube-sink")}, nil
}

// Run keeps the cluster's import objects equal to feed's imports of this
// cluster until ctx ends.
func (s *Sink) Run(ctx context.Context, feed *catalog.Feed, kick func()) error {
	inf := newSinkInformers(s.cfg)
	c, err := newImporter(s, inf, feed, kick)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := inf.start(ctx)
	defer func() {
		cancel()
		stop()
	}()
	s.cur.Store(c)
	defer s.cur.CompareAndSwap(c, nil)
	return c.run(ctx)
}

// Settled reports whether the sink has reconciled everything it found at
// start and has nothing queued or in flight.
func (s *Sink) Settled() bool {
	c := s.cur.Load()
	return c != nil && c.settled()
}

// Writes counts the objects this sink created, changed or deleted.
func (s *Sink) Writes() int64 { return s.writes.Load() }

// Addresses returns the ClusterIP of k's derived Service, if it has one.
func (s *Sink) Addresses(k catalog.ServiceKey) []string {
	c := s.cur.Load()
	if c == nil || !c.ready.Load() {
		return nil
	}
	svc, err := c.services.Services(k.Namespace).Get(DerivedName(k.Name))
	if err != nil || !ours(svc.Labels, s.cfg.Cluster) || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	return []string{svc.Spec.ClusterIP}
}

func ours(l map[string]string, cluster string) bool {
	return l[LabelManagedBy] == ManagedByValue && l[LabelImportingCluster] == cluster
}
