package kube

import (
	"errors"
	"fmt"

	"github.com/causeway-mesh/causeway/catalog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
)

// errNamespaceAbsent reports that an import's namespace does not exist in
// this cluster, or is being deleted: there is nothing to write until the
// namespace is (re)created, and the Namespace informer requeues the
// namespace's imports when it is.
var errNamespaceAbsent = errors.New("kube sink: namespace absent")

// watchNamespaces makes the Namespace informer requeue imports: a
// namespace that appears (created, or deleted and created again under the
// same name) requeues every import of that namespace, so imports exported
// before their namespace existed here are written once it does.
func (c *importer) watchNamespaces(inf cache.SharedIndexInformer) error {
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if ns, ok := o.(*corev1.Namespace); ok {
				c.enqueueNamespace(ns.Name)
			}
		},
		UpdateFunc: func(old, o any) {
			// A delete and a create missed between two lists show up as
			// an update with a new UID.
			a, okA := old.(*corev1.Namespace)
			b, okB := o.(*corev1.Namespace)
			if okA && okB && a.UID != b.UID {
				c.enqueueNamespace(b.Name)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("kube sink: watch Namespaces: %w", err)
	}
	return nil
}

// enqueueNamespace queues every import of namespace ns. Before the first
// full pass (enqueueAll) there is nothing to do: that pass queues them all.
func (c *importer) enqueueNamespace(ns string) {
	if !c.ready.Load() {
		return
	}
	for k := range c.feed.View().Imports(c.cfg.Cluster) {
		if k.Namespace == ns {
			c.loop.add(k)
		}
	}
}

// namespaceGone classifies err, the answer to a write into namespace ns:
// errNamespaceAbsent when ns does not exist here or is being deleted and
// this sink has not seen it (re)created yet, a retryable error when the
// apiserver still refuses a namespace this sink has seen created (its
// admission cache lags), and nil when err says nothing about ns.
func (c *importer) namespaceGone(ns string, err error) error {
	if !apierrors.IsNotFound(err) && !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return nil
	}
	if c.namespaces != nil {
		if n, e := c.namespaces.Get(ns); e == nil && n.DeletionTimestamp == nil {
			return fmt.Errorf("namespace %s exists but the apiserver refused the write (retrying): %w", ns, err)
		}
	}
	return errNamespaceAbsent
}

// waitingForNamespace logs, once per import until it is written, that the
// import of key waits for its namespace.
func (c *importer) waitingForNamespace(key catalog.ServiceKey) {
	if _, seen := c.sink.waiting.LoadOrStore(key, struct{}{}); !seen {
		c.log.Info("namespace does not exist in this cluster (or is being deleted); the import is written when it is created",
			"service", key.String(), "namespace", key.Namespace)
	}
}
