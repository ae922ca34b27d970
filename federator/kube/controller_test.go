package kube

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/catalog"
	"github.com/causeway-mesh/causeway/internal/testenv/kubetest"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// A failed reconcile is retried (rate-limited) until it succeeds, and then
// forgotten: the key is reconciled exactly as often as it failed plus once.
func TestWorkLoopRetriesUntilSuccess(t *testing.T) {
	key := catalog.ServiceKey{Namespace: "demo", Name: "echo"}
	var (
		mu    sync.Mutex
		calls int
	)
	w := newWorkLoop("test", "import", slog.New(slog.DiscardHandler), func(_ context.Context, k catalog.ServiceKey) error {
		require.Equal(t, key, k)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			return errors.New("apiserver said no")
		}
		return nil
	})
	w.add(catalog.ServiceKey{Namespace: "demo"}) // not a service: dropped
	require.Equal(t, 0, w.queue.Len())
	w.add(key)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx, 2)
	}()
	require.Eventually(t, func() bool { return w.reconciled.Load() == 3 && w.idle() }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 0, w.queue.NumRequeues(key), "a key that succeeded is still rate-limited")
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 3, calls)
	require.True(t, w.queue.ShuttingDown(), "run left its queue running")
}

// The importer is given its informers, so a test can build and sync them
// and call reconcile directly (sample-controller's fixture), here against a
// real apiserver: an import the feed no longer has is removed — only the
// objects this cluster's sink owns.
func TestImporterReconcileRemovesWhatItOwns(t *testing.T) {
	const cluster = "north"
	kc := kubetest.Start(t, kubetest.Options{Name: cluster})
	ctx, cancel := context.WithCancel(context.Background())
	mine, theirs := labels(cluster, "echo"), labels("west", "echo")
	for _, ns := range []string{"demo", "other"} {
		createNamespace(t, kc, ns)
	}
	for _, o := range []struct {
		ns, name string
		labels   map[string]string
	}{{"demo", "echo", mine}, {"other", "echo", theirs}} {
		_, err := kc.Kube.CoreV1().Services(o.ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: DerivedName(o.name), Namespace: o.ns, Labels: o.labels},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = kc.MCS.MulticlusterV1beta1().ServiceImports(o.ns).Create(ctx, &mcsv1beta1.ServiceImport{
			ObjectMeta: metav1.ObjectMeta{Name: o.name, Namespace: o.ns, Labels: o.labels},
			Spec:       mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.ClusterSetIP, Ports: []mcsv1beta1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	sink, err := NewSink(SinkConfig{Cluster: cluster, Kube: kc.Kube, MCS: kc.MCS, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	inf := newSinkInformers(sink.cfg)
	c, err := newImporter(sink, inf, catalog.NewFeed(), func() {})
	require.NoError(t, err)
	defer c.loop.queue.ShutDown()
	stop := inf.start(ctx)
	defer func() {
		cancel()
		stop()
	}()
	require.True(t, cache.WaitForCacheSync(ctx.Done(), c.synced...))

	for _, ns := range []string{"demo", "other"} {
		require.NoError(t, c.reconcile(ctx, catalog.ServiceKey{Namespace: ns, Name: "echo"}))
	}
	require.Equal(t, int64(2), sink.Writes(), "want the ServiceImport and the derived Service of demo/echo deleted")
	_, err = kc.MCS.MulticlusterV1beta1().ServiceImports("demo").Get(ctx, "echo", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "our ServiceImport survived: %v", err)
	_, err = kc.Kube.CoreV1().Services("demo").Get(ctx, DerivedName("echo"), metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "our derived Service survived: %v", err)
	_, err = kc.MCS.MulticlusterV1beta1().ServiceImports("other").Get(ctx, "echo", metav1.GetOptions{})
	require.NoError(t, err, "removed another cluster's ServiceImport")
	_, err = kc.Kube.CoreV1().Services("other").Get(ctx, DerivedName("echo"), metav1.GetOptions{})
	require.NoError(t, err, "removed another cluster's derived Service")
}
