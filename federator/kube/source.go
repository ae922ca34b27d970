package kube

import (
	"context"
	"errors"
	"log/slog"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/federator"
	"k8s.io/client-go/kubernetes"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"
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
//
// The federator runs the source for each leadership term; each Run builds
// its informers (newSourceInformers) and an exporter, the controller that
// reads them.
type Source struct {
	cfg SourceConfig
	log *slog.Logger
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
	return &Source{cfg: cfg, log: log.With("component", "kube-source")}, nil
}

// Run watches the cluster and publishes its export set until ctx ends.
func (s *Source) Run(ctx context.Context, publish func(context.Context, []*causewayv1.ExportRecord) error, onError func(error)) error {
	inf := newSourceInformers(s.cfg.Kube, s.cfg.MCS)
	c, err := newExporter(s.cfg, s.log, inf, publish, onError)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := inf.start(ctx)
	defer func() {
		cancel()
		stop()
	}()
	return c.run(ctx)
}
