package store

import (
	"fmt"
	"strings"
)

// Prefix is the root of every Causeway key.
const Prefix = "/causeway/v1/"

// Key kinds: the first path segment after Prefix.
const (
	KindClusters = "clusters"
	KindGateways = "gateways"
	KindExports  = "exports"
	KindImports  = "imports"
	KindDrain    = "drain"
	KindBundles  = "bundles"
	KindVIPs     = "vips"
	// KindLeaders holds the leader-election keys of each cluster's federator
	// replicas (etcd concurrency.Election); they are not catalog entries.
	KindLeaders = "leaders"
	// KindTrust holds each cluster's accepted view of its peers' trust
	// bundles (trust/<verifier>/<peer>, a TrustState signed by the
	// verifier's CA); they are not catalog entries.
	KindTrust = "trust"
)

// ClusterKey is the key of a ClusterRecord.
func ClusterKey(cluster string) string { return Prefix + KindClusters + "/" + cluster }

// GatewayKey is the key of a GatewayRecord.
func GatewayKey(cluster, instance string) string {
	return Prefix + KindGateways + "/" + cluster + "/" + instance
}

// ExportKeyOf is the key of cluster's ExportRecord of ns/svc. The cluster
// comes first, as in every per-cluster key, so that one etcd prefix holds
// everything a cluster writes (see ClusterRolePermissions).
func ExportKeyOf(cluster, ns, svc string) string {
	return Prefix + KindExports + "/" + cluster + "/" + ns + "/" + svc
}

// ExportsPrefix is the prefix of every export record of cluster.
func ExportsPrefix(cluster string) string { return Prefix + KindExports + "/" + cluster + "/" }

// ImportKey is the key of an ImportRecord.
func ImportKey(cluster, ns, svc string) string {
	return Prefix + KindImports + "/" + cluster + "/" + ns + "/" + svc
}

// DrainKey is the key of a DrainRecord; ns and svc empty drain the whole cluster.
func DrainKey(cluster, ns, svc string) string {
	if ns == "" && svc == "" {
		return Prefix + KindDrain + "/" + cluster
	}
	return Prefix + KindDrain + "/" + cluster + "/" + ns + "/" + svc
}

// BundleKey is the key of a cluster's TrustBundle.
func BundleKey(cluster string) string { return Prefix + KindBundles + "/" + cluster }

// VIPKey is the key reserving one clusterset IP in one cluster.
func VIPKey(cluster, ip string) string { return Prefix + KindVIPs + "/" + cluster + "/" + ip }

// ElectionPrefix is the election prefix of cluster's federator replicas;
// concurrency.Election appends the candidate's lease ID.
func ElectionPrefix(cluster string) string { return Prefix + KindLeaders + "/" + cluster }

// TrustKey is the key of verifier's TrustState for peer's bundle.
func TrustKey(verifier, peer string) string { return Prefix + KindTrust + "/" + verifier + "/" + peer }

// TrustPrefix is the prefix of verifier's TrustStates.
func TrustPrefix(verifier string) string { return Prefix + KindTrust + "/" + verifier + "/" }

// vipPrefix is the prefix of one cluster's VIP reservations.
func vipPrefix(cluster string) string { return Prefix + KindVIPs + "/" + cluster + "/" }

// segmentCounts is how many segments follow the kind in each key shape.
var segmentCounts = map[string][]int{
	KindClusters: {1},
	KindGateways: {2},
	KindExports:  {3},
	KindImports:  {3},
	KindDrain:    {1, 3},
	KindBundles:  {1},
	KindVIPs:     {2},
	KindLeaders:  {2},
	KindTrust:    {2},
}

// ParseKey splits a full key into its kind and segments.
func ParseKey(key string) (kind string, segments []string, err error) {
	rest, ok := strings.CutPrefix(key, Prefix)
	if !ok {
		return "", nil, fmt.Errorf("parse key %q: not under %s", key, Prefix)
	}
	parts := strings.Split(rest, "/")
	kind, segments = parts[0], parts[1:]
	counts, known := segmentCounts[kind]
	if !known {
		return "", nil, fmt.Errorf("parse key %q: unknown kind %q", key, kind)
	}
	for _, c := range counts {
		if len(segments) == c {
			for _, s := range segments {
				if s == "" {
					return "", nil, fmt.Errorf("parse key %q: empty segment", key)
				}
			}
			return kind, segments, nil
		}
	}
	return "", nil, fmt.Errorf("parse key %q: %d segments for kind %s", key, len(segments), kind)
}

// RelativeKey strips Prefix; catalog entries carry relative keys.
func RelativeKey(key string) string { return strings.TrimPrefix(key, Prefix) }
