package join

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrRegistered is returned when the cluster is already registered in the
// federation etcd and Options.Force is not set.
var ErrRegistered = errors.New("join: cluster already registered")

// Names of the files written to Options.Out.
const (
	CADirName      = "ca"
	ValuesFile     = "values.yaml"
	CASecretFile   = "ca-secret.yaml"
	EtcdSecretFile = "etcd-secret.yaml"
	// EtcdPasswordFile holds the password of the cluster's etcd user, for
	// a federator run from a configuration file (etcd.passwordFile).
	EtcdPasswordFile = "etcd-password"
)

// Result is what Run did.
type Result struct {
	Cluster     string `json:"cluster"`
	TrustDomain string `json:"trustDomain"`
	// CADir is the new CA directory (ca.crt, ca.key, bundle.crt).
	CADir string `json:"caDir"`
	// ValuesFile is the Helm values file.
	ValuesFile string `json:"valuesFile"`
	// CASecret and EtcdSecret are the Secret manifests.
	CASecret   string `json:"caSecret"`
	EtcdSecret string `json:"etcdSecret"`
	// EtcdUser is the cluster's own etcd user (its role writes only the
	// cluster's keys); EtcdPasswordFile holds its password (0600).
	EtcdUser         string `json:"etcdUser"`
	EtcdPasswordFile string `json:"etcdPasswordFile"`
	// Namespace the manifests are for.
	Namespace string `json:"namespace"`
	// Replaced is set when an existing registration was overwritten (Force).
	Replaced bool `json:"replaced"`
	// NeedsAdvertise is set when no gateway address was given.
	NeedsAdvertise bool `json:"needsAdvertise"`
	// Fingerprint is the SHA-256 fingerprint of the new CA: every other
	// cluster pins it (trustPins, or causeway clusters trust) before it
	// accepts the cluster's gateways.
	Fingerprint string `json:"fingerprint"`
}

// Run registers o.Cluster in the federation etcd, creates its CA,
// publishes its trust bundle and writes the values file and Secret
// manifests for `helm install` into o.Out.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	r := &Result{
		Cluster: o.Cluster, TrustDomain: certs.TrustDomainFor(o.Cluster, o.Domain), Namespace: o.Namespace,
		CADir: filepath.Join(out, CADirName), ValuesFile: filepath.Join(out, ValuesFile),
		CASecret: filepath.Join(out, CASecretFile), NeedsAdvertise: len(o.Advertise) == 0,
		EtcdSecret: filepath.Join(out, EtcdSecretFile), EtcdUser: store.ClusterUser(o.Cluster),
		EtcdPasswordFile: filepath.Join(out, EtcdPasswordFile),
	}
	cli, err := preflight(ctx, o, r)
	if err != nil {
		return nil, err
	}
	defer cli.Close()

	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", out, err)
	}
	lifetime := o.CALifetime
	if lifetime == 0 {
		lifetime = certs.DefaultCALifetime
	}
	now := o.Now()
	ca, err := certs.InitCADir(r.CADir, r.TrustDomain, lifetime, now, o.Force)
	if err != nil {
		return nil, err
	}
	undo := func() {
		if o.Force {
			return // files we replaced cannot be restored; leave the new ones
		}
		for _, name := range []string{certs.CACertFile, certs.CAKeyFile, certs.BundleFile} {
			_ = os.Remove(filepath.Join(r.CADir, name))
		}
		_ = os.Remove(r.CADir) // only if empty
	}
	// Read back before registering: a failure here leaves etcd untouched.
	caSecret, err := caSecretManifest(o, r.CADir)
	if err != nil {
		undo()
		return nil, err
	}
	// The user first: without the clusterset admin's rights this fails
	// before anything of the cluster is in etcd.
	password, err := createClusterUser(ctx, cli, o.Cluster)
	if err != nil {
		undo()
		return nil, err
	}
	etcdSecret, err := etcdSecretManifest(o, password)
	if err != nil {
		undo()
		return nil, err
	}
	r.Fingerprint = certs.Fingerprint(ca.Cert)
	r.Replaced, err = register(ctx, cli, o, r.TrustDomain, ca, now)
	if err != nil {
		undo()
		return nil, err
	}

	return r, writeOutputs(o, []outFile{
		{r.CASecret, caSecret, 0o600},
		{r.ValuesFile, valuesFile(o), 0o644},
		{r.EtcdSecret, etcdSecret, 0o600},
		{r.EtcdPasswordFile, []byte(password + "\n"), 0o600},
	})
}

// writeOutputs writes Run's files once the cluster is registered.
func writeOutputs(o Options, files []outFile) error {
	for _, f := range files {
		if err := certs.WriteFileExclusive(f.path, f.data, f.perm, o.Force); err != nil {
			return fmt.Errorf("join %s (registered; rerun with --force to rewrite the files): %w", o.Cluster, err)
		}
	}
	return nil
}

// preflight checks what Run needs before it writes anything: the etcd CA
// file reads, the output files are absent (unless Force), and etcd answers
// and agrees (the cluster is new, or with Force not live). It returns the
// etcd client.
func preflight(ctx context.Context, o Options, r *Result) (*etcdConn, error) {
	if _, err := etcdSecretManifest(o, ""); err != nil { // reads the CA file: fail before writing
		return nil, err
	}
	if !o.Force {
		if err := checkAbsent(r.ValuesFile, r.CASecret, r.EtcdSecret, r.EtcdPasswordFile); err != nil {
			return nil, err
		}
	}
	cli, err := dialEtcd(ctx, o.Etcd)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*etcdConn, error) { _ = cli.Close(); return nil, err }
	if o.Force {
		if err := checkNotLive(ctx, cli, o.Cluster); err != nil {
			return fail(err)
		}
	} else if err := checkUnregistered(ctx, cli, o.Cluster); err != nil {
		return fail(err)
	}
	return cli, nil
}

// outFile is one file Run writes into Options.Out.
type outFile struct {
	path string
	data []byte
	perm os.FileMode
}

// checkAbsent fails when any of paths (empty ones skipped) exists.
func checkAbsent(paths ...string) error {
	for _, p := range paths {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("join: %s: %w (pass --force to replace it)", p, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("join: %w", err)
		}
	}
	return nil
}

// checkUnregistered fails with ErrRegistered when the cluster has a record
// or a bundle in etcd.
func checkUnregistered(ctx context.Context, cli *etcdConn, cluster string) error {
	for _, key := range []string{store.ClusterKey(cluster), store.BundleKey(cluster)} {
		var resp *clientv3.GetResponse
		err := cli.do(ctx, "read "+key, func(ctx context.Context) (err error) {
			resp, err = cli.cli.Get(ctx, key, clientv3.WithCountOnly())
			return err
		})
		if err != nil {
			return err
		}
		if resp.Count > 0 {
			return fmt.Errorf("%w: %s exists (pass --force to replace the cluster's registration and CA)", ErrRegistered, key)
		}
	}
	return nil
}

// register writes the cluster record and the trust bundle: create-only
// unless o.Force. It reports whether a registration was replaced.
func register(ctx context.Context, cli *etcdConn, o Options, td string, ca *certs.CA, now time.Time) (bool, error) {
	rec, err := store.Encode(&causewayv1.ClusterRecord{Name: o.Cluster, Region: o.Region, Zone: o.Zone, TrustDomain: td})
	if err != nil {
		return false, err
	}
	// The first link of the cluster's signed bundle chain: peers trust it
	// once pinned (the fingerprint printed), then follow its rotations.
	signed, err := certs.NextSignedBundle(nil, o.Cluster, td, ca, []*x509.Certificate{ca.Cert}, uint64(now.UnixNano()))
	if err != nil {
		return false, err
	}
	bundle, err := store.Encode(signed)
	if err != nil {
		return false, err
	}
	ck, bk := store.ClusterKey(o.Cluster), store.BundleKey(o.Cluster)
	puts := []clientv3.Op{clientv3.OpPut(ck, string(rec)), clientv3.OpPut(bk, string(bundle))}
	var resp *clientv3.TxnResponse
	err = cli.do(ctx, "register "+o.Cluster, func(ctx context.Context) (err error) {
		txn := cli.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(ck), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(bk), "=", 0),
		).Then(puts...)
		if o.Force {
			txn = txn.Else(puts...) // present: replace
		}
		resp, err = txn.Commit()
		return err
	})
	if err != nil {
		return false, err
	}
	switch {
	case resp.Succeeded:
		return false, nil
	case o.Force:
		return true, nil
	}
	return false, fmt.Errorf("%w: %s was registered meanwhile", ErrRegistered, o.Cluster)
}

// WriteTable implements cli.Tabular: what was done and what to run next.
func (r *Result) WriteTable(w io.Writer) error {
	verb := "registered"
	if r.Replaced {
		verb = "re-registered (the previous registration and trust bundle were replaced)"
	}
	fmt.Fprintf(w, "cluster %s %s, trust domain %s; its trust bundle is published\n", r.Cluster, verb, r.TrustDomain)
	fmt.Fprintf(w, "  CA directory:  %s (ca.key is 0600: keep it secret, back it up)\n", r.CADir)
	fmt.Fprintf(w, "  CA fingerprint: %s\n", r.Fingerprint)
	if r.Replaced {
		fmt.Fprintf(w, "  the new CA does not chain from the replaced one: every other cluster refuses %s until it re-pins it (below)\n", r.Cluster)
	}
	fmt.Fprintf(w, "  values file:   %s\n", r.ValuesFile)
	fmt.Fprintf(w, "  CA Secret:     %s (holds the CA key)\n", r.CASecret)
	fmt.Fprintf(w, "  etcd Secret:   %s (holds etcd user %s's password; its role writes only %s's keys)\n", r.EtcdSecret, r.EtcdUser, r.Cluster)
	fmt.Fprintf(w, "  etcd password: %s (the same password, for a federator configured from a file)\n", r.EtcdPasswordFile)
	fmt.Fprintf(w, "next, with kubectl pointed at the cluster:\n")
	fmt.Fprintf(w, "  kubectl create namespace %s\n", r.Namespace)
	secrets := "-f " + r.CASecret + " -f " + r.EtcdSecret
	fmt.Fprintf(w, "  kubectl apply %s\n", secrets)
	if r.NeedsAdvertise {
		fmt.Fprintf(w, "  set gateway.advertise in %s to the address peers dial\n", r.ValuesFile)
	}
	fmt.Fprintf(w, "  helm install causeway deploy/helm/causeway -n %s -f %s\n", r.Namespace, r.ValuesFile)
	fmt.Fprintf(w, "then make every other cluster trust %s's CA (until then their gateways refuse it):\n", r.Cluster)
	fmt.Fprintf(w, "  causeway clusters trust %s --fingerprint %s   (against each other cluster's federator)\n", r.Cluster, r.Fingerprint)
	fmt.Fprintf(w, "  or set federator.trustPins.%s: %q in their chart values\n", r.Cluster, r.Fingerprint)
	_, err := fmt.Fprintf(w, "and make %s trust each of them: causeway clusters trust PEER --fingerprint <PEER's CA fingerprint>\n", r.Cluster)
	return err
}
