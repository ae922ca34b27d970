package kubetest

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Options configures one cluster. The zero value is valid.
type Options struct {
	// Name names the cluster in Cluster.Name, the kubeconfig's cluster,
	// user and context, and log lines. If empty, "cluster-N" with N unique
	// in the process.
	Name string
	// ServiceClusterIPRange is the apiserver's --service-cluster-ip-range.
	// Clusters are separate, so they may share it. If empty, 10.96.0.0/16.
	ServiceClusterIPRange string
	// StartTimeout bounds the start of etcd and the apiserver up to
	// /readyz and, separately, the wait for the CRDs to be served. If zero,
	// 2m (startup takes 3-8s on an idle 2-core machine, 40s on a loaded one).
	StartTimeout time.Duration
	// StopTimeout is how long cleanup waits after SIGTERM before SIGKILL.
	// If zero, 10s.
	StopTimeout time.Duration
	// SkipMCSCRDs leaves the mcs-api ServiceExport and ServiceImport CRDs
	// uninstalled, for tests of a cluster without them. If false, they are
	// installed and Start waits until they are served.
	SkipMCSCRDs bool
	// ExtraArgs are appended to the apiserver's command line; a repeated
	// flag overrides the harness's value.
	ExtraArgs []string
}

const (
	defaultServiceCIDR  = "10.96.0.0/16"
	defaultStartTimeout = 2 * time.Minute
	defaultStopTimeout  = 10 * time.Second
)

// clusterSeq numbers unnamed clusters.
var clusterSeq atomic.Int64

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = fmt.Sprintf("cluster-%d", clusterSeq.Add(1))
	}
	if o.ServiceClusterIPRange == "" {
		o.ServiceClusterIPRange = defaultServiceCIDR
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = defaultStartTimeout
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = defaultStopTimeout
	}
	return o
}
