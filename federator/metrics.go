package federator

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	exports         prometheus.Gauge
	imports         prometheus.Gauge
	relists         prometheus.Counter
	sourceErrors    prometheus.Counter
	reconcileErrors *prometheus.CounterVec
	watchers        prometheus.Gauge
	leader          prometheus.Gauge
	watchResumes    prometheus.Counter
	etcdUp          prometheus.Gauge
	healed          *prometheus.CounterVec
	peerBundles     *prometheus.GaugeVec
	bundleRefusals  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "causeway", "federator"
	m := &metrics{
		exports: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "exports", Help: "Services this cluster exports."}),
		imports: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "imports", Help: "Services this cluster imports."}),
		relists: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "etcd_relists_total", Help: "Full re-lists of etcd after a failed or compacted watch."}),
		sourceErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "source_errors_total", Help: "Versions of the export source rejected: a static exports file counts each distinct bad content (or read error) once, however long it stays; the last good set stays published."}),
		reconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "reconcile_errors_total", Help: "Failed reconcile passes, by side (export, import)."}, []string{"side"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "catalog_watchers", Help: "Open Catalog.Watch streams."}),
		watchResumes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "catalog_watch_resumes_total", Help: "Catalog.Watch streams resumed with a delta instead of a snapshot."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "leader", Help: "1 while this replica leads its cluster's federation writes."}),
		etcdUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "etcd_up", Help: "1 while the federation etcd answers the health probe."}),
		healed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "records_healed_total", Help: "Own records put back in etcd after something else deleted, corrupted or changed them, by kind (cluster, bundle, export, gateway)."}, []string{"kind"}),
		peerBundles: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "peer_bundles", Help: "Peer clusters publishing a trust bundle, by how this cluster trusts it: trusted, untrusted (not pinned: its gateways are refused) or behind (a newer bundle does not chain from the trusted one)."}, []string{"state"}),
		bundleRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "bundle_refusals_total", Help: "Published peer trust bundles (or stored trust states) refused, by reason: not_pinned, pin_mismatch, not_chained, rollback, invalid, bad_state."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.exports, m.imports, m.relists, m.sourceErrors, m.reconcileErrors, m.watchers, m.leader, m.etcdUp, m.watchResumes, m.healed,
			m.peerBundles, m.bundleRefusals)
	}
	return m
}
