// Package kube owns the Kubernetes side of a federator: it reads a
// cluster's ServiceExports (with their Services and EndpointSlices) into
// export records and sets their mcs-api conditions, and it writes the
// cluster's imports back as ServiceImports, derived Services and
// EndpointSlices.
//
// Rules:
//   - Controllers are shaped like sample-controller: for each leadership
//     term, newSinkInformers/newSourceInformers build the informers, the
//     controller (importer, exporter) is given them and its handlers only
//     queue typed service keys (catalog.ServiceKey), and run only waits
//     for the caches and starts the workers. Retries are decided in one
//     place, workLoop.processNextWorkItem; reconcile(key) is idempotent.
//   - Files: sink.go and source.go are the types the federator sees;
//     importer.go and exporter.go the controllers; sink_service.go,
//     sink_slices.go and sink_serviceimport.go what the sink writes;
//     source_record.go and source_status.go what the source reads and
//     writes.
//   - Every write is server-side apply with field manager "causeway", and
//     only happens when the object differs from what it should be, so a
//     restart or an etcd outage causes no churn (resourceVersions stay).
//   - Every object created here carries the labels of Labels(); orphans
//     (objects whose import is gone) are found by label and removed.
//   - Namespaces are never created: an import whose namespace is absent
//     (or terminating) waits, and the Namespace informer requeues it when
//     the namespace is created or re-created.
//   - Nothing is deleted because the federation is unreachable: deletes
//     follow the federator's mirrored view, which stays put while etcd is
//     away.
package kube
