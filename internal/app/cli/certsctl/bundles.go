package certsctl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/app/cli"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// BundleList is the answer of `causeway certs bundles`.
type BundleList struct {
	// Source is the federator asked.
	Source string `json:"source"`
	// Revision is the etcd revision of the federator's view.
	Revision int64    `json:"revision"`
	Bundles  []Bundle `json:"bundles"`
}

// Bundle is one cluster's published trust bundle.
type Bundle struct {
	Cluster     string `json:"cluster"`
	TrustDomain string `json:"trustDomain"`
	// Sequence increases with every change the cluster publishes.
	// In JSON it is a string: it can exceed 2^53, which jq and JavaScript
	// cannot hold exactly.
	Sequence    uint64     `json:"sequence,string"`
	Authorities []CertInfo `json:"authorities"`
	// Trust is how the asked federator trusts the bundle: own, trusted,
	// untrusted (not pinned: the cluster's gateways are refused; the bundle
	// is not listed) or behind (a newer published bundle does not chain
	// from the listed, trusted one).
	Trust string `json:"trust"`
	// Problems lists what is wrong with the bundle (a certificate that is
	// not a CA of the trust domain, an expired CA, a bundle not trusted).
	Problems []string `json:"problems"`
}

// FetchBundles reads every trust bundle the federator at t.Addr trusts:
// the first snapshot of its Catalog.Watch (which serves only verified
// bundles), authorized with the admin credentials of t, plus how it trusts
// each member cluster (Admin.ListClusters), so clusters whose bundle it
// refuses are listed too.
func FetchBundles(ctx context.Context, t cli.Target) (*BundleList, error) {
	cfg, err := federatorTLS(t)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(t.Addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", t.Addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	unreachable := func(err error) error {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("catalog %s unreachable: no answer within %s", t.Addr, t.Timeout)
		}
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable {
			msg := st.Message()
			if _, desc, ok := strings.Cut(msg, `desc = "`); ok {
				msg = strings.TrimSuffix(desc, `"`)
			}
			msg = strings.TrimPrefix(strings.TrimPrefix(msg, "transport: "), "Error while dialing: ")
			return fmt.Errorf("catalog %s unreachable: %s", t.Addr, msg)
		}
		return fmt.Errorf("catalog %s: %w", t.Addr, err)
	}
	stream, err := causewayv1.NewCatalogClient(conn).Watch(ctx, &causewayv1.WatchRequest{})
	if err != nil {
		return nil, unreachable(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, unreachable(err)
	}
	if !resp.GetReset_() {
		return nil, fmt.Errorf("catalog %s: first answer is not a snapshot", t.Addr)
	}
	bundles := map[string]*causewayv1.TrustBundle{} // by the cluster of the etcd key
	for _, e := range resp.GetUpserts() {
		if b := e.GetBundle(); b != nil {
			bundles[strings.TrimPrefix(e.GetKey(), "bundles/")] = b
		}
	}
	l := newBundleList(t.Addr, resp.GetRevision(), bundles, time.Now())
	clusters, err := causewayv1.NewAdminClient(conn).ListClusters(ctx, &causewayv1.ListClustersRequest{})
	if err != nil {
		return nil, unreachable(err)
	}
	l.addTrust(clusters.GetClusters())
	return l, nil
}

// addTrust sets each bundle's trust as the federator reports it, and adds
// the clusters whose bundle it does not trust (and so does not serve).
func (l *BundleList) addTrust(clusters []*causewayv1.ClusterInfo) {
	for _, c := range clusters {
		i := slices.IndexFunc(l.Bundles, func(b Bundle) bool { return b.Cluster == c.GetName() })
		if i < 0 {
			l.Bundles = append(l.Bundles, Bundle{Cluster: c.GetName(), TrustDomain: c.GetTrustDomain(),
				Authorities: []CertInfo{}, Problems: []string{}})
			i = len(l.Bundles) - 1
		}
		b := &l.Bundles[i]
		b.Trust = c.GetTrust()
		if d := c.GetTrustDetail(); d != "" {
			b.Problems = append(b.Problems, c.GetTrust()+": "+d)
		}
	}
	sort.Slice(l.Bundles, func(i, j int) bool { return l.Bundles[i].Cluster < l.Bundles[j].Cluster })
}

// newBundleList describes bundles, keyed by the cluster of their etcd key.
func newBundleList(source string, rev int64, in map[string]*causewayv1.TrustBundle, now time.Time) *BundleList {
	out := &BundleList{Source: source, Revision: rev, Bundles: []Bundle{}}
	for cluster, b := range in {
		bl := Bundle{Cluster: cluster, TrustDomain: b.GetTrustDomain(), Sequence: b.GetSequence(),
			Authorities: []CertInfo{}, Problems: []string{}}
		// What a verifying gateway checks (certs.CheckPublishedBundle).
		if _, _, err := certs.CheckPublishedBundle(cluster, b); err != nil {
			bl.Problems = append(bl.Problems, err.Error())
		}
		cas, _ := certs.ParseAuthorities(b.GetX509Authorities())
		for _, c := range cas {
			bl.Authorities = append(bl.Authorities, newCertInfo(c, now))
			if !now.Before(c.NotAfter) {
				bl.Problems = append(bl.Problems, fmt.Sprintf("CA %s expired", certs.SerialHex(c)))
			}
		}
		out.Bundles = append(out.Bundles, bl)
	}
	sort.Slice(out.Bundles, func(i, j int) bool { return out.Bundles[i].Cluster < out.Bundles[j].Cluster })
	return out
}

// federatorTLS presents t's admin certificate and accepts only the
// federator of the CA file's trust domain (which may hold several CAs
// during a rotation).
func federatorTLS(t cli.Target) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("load admin certificate %s and key %s: %w", t.Cert, t.Key, err)
	}
	cas, err := certs.ReadCertificatesFile(t.CA)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	td, err := certs.TrustDomainOfCA(cas[0])
	if err != nil {
		return nil, fmt.Errorf("CA file %s: %w", t.CA, err)
	}
	fedID, err := certs.NewID(td, "federator")
	if err != nil {
		return nil, err
	}
	bundles := certs.NewBundleSet()
	bundles.Set(td, cas)
	return certs.ClientConfig(certs.TLSOptions{Source: certs.NewStaticSource(&pair), Bundles: bundles,
		Authorize: certs.AuthorizeID(fedID), NextProtos: []string{"h2"}}), nil
}

// WriteTable implements cli.Tabular.
func (l *BundleList) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "trust bundles published in the federation (from %s, revision %d)\n", l.Source, l.Revision)
	if len(l.Bundles) == 0 {
		_, err := fmt.Fprintln(w, "none")
		return err
	}
	tw := cli.NewTable(w, "CLUSTER", "TRUST DOMAIN", "TRUST", "SEQUENCE", "CA SERIAL", "NOT AFTER", "LEFT", "PROBLEMS")
	for _, b := range l.Bundles {
		problems := strings.Join(b.Problems, "; ")
		if problems == "" {
			problems = "-"
		}
		trust := orNone(b.Trust)
		if len(b.Authorities) == 0 {
			tw.Row(b.Cluster, b.TrustDomain, trust, b.Sequence, "-", "-", "-", problems)
		}
		for i, a := range b.Authorities {
			if i > 0 {
				tw.Row("", "", "", "", a.Serial, a.NotAfter.Format(time.RFC3339), a.TimeLeft, "")
				continue
			}
			tw.Row(b.Cluster, b.TrustDomain, trust, b.Sequence, a.Serial, a.NotAfter.Format(time.RFC3339), a.TimeLeft, problems)
		}
	}
	return tw.Flush()
}
