package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/app/component"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/timestamppb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EtcdOptions are the federation etcd endpoints and the clusterset-admin
// credentials, for the writes about any cluster (drain, undrain, clusters
// remove of another cluster than the asked federator's; etcd migrate).
type EtcdOptions struct {
	// Endpoints of the etcd members; given, they make the verb go to etcd.
	Endpoints []string
	// CAFile verifies etcd; CertFile and KeyFile are a client certificate;
	// ServerName is the name etcd's certificate is verified against.
	CAFile, CertFile, KeyFile, ServerName string
	// Username and PasswordFile authenticate (the clusterset admin).
	Username, PasswordFile string
	// Timeout bounds connecting and each request. If zero, DefaultTimeout.
	Timeout time.Duration
}

// stateEtcd is the clusterset-admin entry of a `causeway dev` state file
// (devenv.EtcdCredentials).
type stateEtcd struct {
	Endpoints    []string `json:"endpoints"`
	CAFile       string   `json:"caFile"`
	ServerName   string   `json:"serverName"`
	Username     string   `json:"username"`
	PasswordFile string   `json:"passwordFile"`
}

// WithStateFile fills the fields not given from the state file's
// clusterset-admin credentials; ok is false when the file has none.
func (o EtcdOptions) WithStateFile(path string) (EtcdOptions, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return o, false, fmt.Errorf("read state file: %w", err)
	}
	var st struct {
		ClustersetAdmin *stateEtcd `json:"clustersetAdmin"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return o, false, fmt.Errorf("read state file %s: %w", path, err)
	}
	a := st.ClustersetAdmin
	if a == nil || len(a.Endpoints) == 0 {
		return o, false, nil
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	if len(o.Endpoints) == 0 {
		o.Endpoints = a.Endpoints
	}
	fill(&o.CAFile, a.CAFile)
	fill(&o.ServerName, a.ServerName)
	fill(&o.Username, a.Username)
	fill(&o.PasswordFile, a.PasswordFile)
	return o, true, nil
}

// EtcdAdmin does the clusterset admin's writes directly in the federation
// etcd, with the same checks as a federator's Admin API.
type EtcdAdmin struct {
	cli       *clientv3.Client
	st        *store.Store
	endpoints string
	user      string
	timeout   time.Duration
}

// DialEtcd connects to the federation etcd with o's credentials.
func DialEtcd(o EtcdOptions) (*EtcdAdmin, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("no etcd endpoint: give --etcd")
	}
	if (o.Username == "") != (o.PasswordFile == "") {
		return nil, errors.New("--etcd-username and --etcd-password-file go together")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	cli, err := component.NewEtcdClient(component.EtcdConfig{
		Endpoints: o.Endpoints, CAFile: o.CAFile, CertFile: o.CertFile, KeyFile: o.KeyFile, ServerName: o.ServerName,
		Username: o.Username, PasswordFile: o.PasswordFile, DialTimeout: metav1.Duration{Duration: o.Timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(o.Endpoints, ","), err)
	}
	return &EtcdAdmin{cli: cli, st: store.New(cli, store.Options{}), endpoints: strings.Join(o.Endpoints, ","),
		user: o.Username, timeout: o.Timeout}, nil
}

// Close closes the etcd client.
func (e *EtcdAdmin) Close() error { return e.cli.Close() }

// Client is the etcd client (for verbs built on the store directly).
func (e *EtcdAdmin) Client() *clientv3.Client { return e.cli }

// explain turns an etcd error into one line naming etcd and what to do.
func (e *EtcdAdmin) explain(what string, err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return fmt.Errorf("%s: etcd %s refused it for user %q: writes about any cluster need the clusterset-admin user (%s)",
			what, e.endpoints, e.user, store.ClustersetAdminUser)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: etcd %s unreachable: no answer within %s", what, e.endpoints, e.timeout)
	}
	return fmt.Errorf("%s: etcd %s: %s", what, e.endpoints, oneLine(err.Error()))
}

// member fails unless cluster has a cluster record.
func (e *EtcdAdmin) member(ctx context.Context, cluster string) error {
	resp, err := e.cli.Get(ctx, store.ClusterKey(cluster), clientv3.WithCountOnly())
	if err != nil {
		return e.explain("read cluster "+cluster, err)
	}
	if resp.Count == 0 {
		return fmt.Errorf("cluster %s is not a member of the federation", cluster)
	}
	return nil
}

// exports fails unless cluster exports ns/name.
func (e *EtcdAdmin) exports(ctx context.Context, cluster, ns, name string) error {
	resp, err := e.cli.Get(ctx, store.ExportKeyOf(cluster, ns, name), clientv3.WithCountOnly())
	if err != nil {
		return e.explain("read export", err)
	}
	if resp.Count == 0 {
		return fmt.Errorf("cluster %s does not export %s/%s", cluster, ns, name)
	}
	return nil
}

func checkTarget(cluster, service string) (ns, name string, err error) {
	if !names.IsDNSLabel(cluster) {
		return "", "", fmt.Errorf("cluster name %q is not a DNS label", cluster)
	}
	return ParseService(service)
}

// Drain drains a cluster, or the service "ns/name" of it, as Admin.Drain.
func (e *EtcdAdmin) Drain(ctx context.Context, cluster, service, reason string) (*DrainResult, error) {
	ns, name, err := checkTarget(cluster, service)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if err := e.member(ctx, cluster); err != nil {
		return nil, err
	}
	if ns != "" {
		if err := e.exports(ctx, cluster, ns, name); err != nil {
			return nil, err
		}
	}
	rec, created, err := e.st.CreateDrain(ctx, &causewayv1.DrainRecord{
		Cluster: cluster, Namespace: ns, Name: name, Reason: reason, Since: timestamppb.Now(),
	})
	if err != nil {
		return nil, e.explain("drain "+cluster, err)
	}
	return &DrainResult{Cluster: cluster, Service: service, Drained: true, Changed: created,
		Reason: rec.GetReason(), Since: timeOrNil(rec.GetSince())}, nil
}

// Undrain undrains a cluster, or the service "ns/name" of it, as Admin.Undrain.
func (e *EtcdAdmin) Undrain(ctx context.Context, cluster, service string) (*DrainResult, error) {
	ns, name, err := checkTarget(cluster, service)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	removed, err := e.st.RemoveDrain(ctx, cluster, ns, name)
	if err != nil {
		return nil, e.explain("undrain "+cluster, err)
	}
	res := &DrainResult{Cluster: cluster, Service: service, Changed: removed}
	if removed {
		return res, nil
	}
	if err := e.member(ctx, cluster); err != nil {
		return nil, err
	}
	if ns != "" {
		return res, e.exports(ctx, cluster, ns, name)
	}
	resp, err := e.cli.Get(ctx, store.DrainKey(cluster, "", "")+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, e.explain("read drains of "+cluster, err)
	}
	for _, kv := range resp.Kvs {
		if _, seg, err := store.ParseKey(string(kv.Key)); err == nil && len(seg) == 3 {
			res.DrainedServices = append(res.DrainedServices, seg[1]+"/"+seg[2])
		}
	}
	sort.Strings(res.DrainedServices)
	return res, nil
}

// ErrLive is returned when a cluster to remove or replace still runs.
var ErrLive = errors.New("cluster is live")

// RemoveCluster removes a cluster from the federation. A live cluster
// (gateways on live leases, or a federator holding its election key) is
// removed only with force.
func (e *EtcdAdmin) RemoveCluster(ctx context.Context, cluster string, force bool) (*RemoveResult, error) {
	if !names.IsDNSLabel(cluster) {
		return nil, fmt.Errorf("cluster name %q is not a DNS label", cluster)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if !force {
		l, err := e.st.Liveness(ctx, cluster)
		if err != nil {
			return nil, e.explain("remove "+cluster, err)
		}
		if l.Live() {
			return nil, fmt.Errorf("remove %s: %w: %s; stop its federator and gateways first, or pass --force", cluster, ErrLive, l)
		}
	}
	r, err := e.st.RemoveCluster(ctx, cluster)
	if err != nil {
		return nil, e.explain("remove "+cluster, err)
	}
	if r.Total() == 0 {
		return nil, fmt.Errorf("cluster %s is not a member of the federation", cluster)
	}
	return newRemoveResult(&causewayv1.RemoveClusterResponse{
		Name: cluster, Exports: uint32(r.Exports), Gateways: uint32(r.Gateways), Drains: uint32(r.Drains),
		Imports: uint32(r.Imports), Vips: uint32(r.VIPs), Bundles: uint32(r.Bundles), Clusters: uint32(r.Clusters),
	}), nil
}
