package kubetest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"

	"github.com/causeway-mesh/causeway/internal/lib/embedetcd"
)

// logTailLines is how much of an apiserver's log a failed test shows.
const logTailLines = 40

// Cluster is a running kube-apiserver with its own etcd. Its fields are
// set by Start and must not be changed.
type Cluster struct {
	// Name is Options.Name (or its default).
	Name string
	// URL is the apiserver's https URL on 127.0.0.1.
	URL string
	// Token is a bearer token of AdminUser, in group system:masters.
	Token string
	// RESTConfig authenticates with Token and verifies the apiserver's
	// self-signed certificate. Clients may copy and modify it.
	RESTConfig *rest.Config
	// Kubeconfig is the path of a kubeconfig file equivalent to RESTConfig,
	// for tools and code that load one (its context is Name).
	Kubeconfig string
	// Kube, MCS and Dynamic are clients built from RESTConfig.
	Kube    kubernetes.Interface
	MCS     mcsclient.Interface
	Dynamic dynamic.Interface
	// LogFile is the path of the apiserver's combined output.
	LogFile string
	// EtcdEndpoint is the host:port of the cluster's embedded etcd.
	EtcdEndpoint string

	opts      Options
	proc      *process
	closeEtcd func() // etcd.Close once: embedetcd.Server.Close panics when called twice
}

// Start starts a kube-apiserver for t and returns when it is ready and,
// unless opts.SkipMCSCRDs, serves the mcs-api CRDs. It skips t under
// testing.Short() and fails t if the cluster does not start. Everything it
// starts is stopped by t.Cleanup.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	skipIfShort(t)
	c, err := start(t, opts)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return c
}

// StartN starts one cluster per name concurrently, each as Start would
// with Options{Name: name}, and returns them in the order of names.
func StartN(t testing.TB, names ...string) []*Cluster {
	t.Helper()
	skipIfShort(t)
	clusters := make([]*Cluster, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			clusters[i], errs[i] = start(t, Options{Name: name})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return clusters
}

func skipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("kubetest: -short skips tests that run a real kube-apiserver")
	}
}

// Stop stops the apiserver and then its etcd, as t.Cleanup does; tests
// call it to take a cluster down early. Safe to call more than once.
func (c *Cluster) Stop() error {
	err := c.proc.stop(c.opts.StopTimeout)
	c.closeEtcd()
	return err
}

// start does Start's work without touching t's failure state, so that
// StartN can call it from several goroutines. t.TempDir and t.Cleanup are
// safe to call concurrently.
func start(t testing.TB, opts Options) (*Cluster, error) {
	opts = opts.withDefaults()
	bin, err := binary(t.Logf)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", opts.Name, err)
	}
	c := &Cluster{Name: opts.Name, opts: opts}
	began := time.Now()
	if err := c.start(t, bin); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", opts.Name, err)
	}
	t.Logf("kubetest: cluster %s: kube-apiserver %s ready at %s in %s", c.Name, KubeVersion, c.URL, time.Since(began).Round(10*time.Millisecond))
	return c, nil
}

func (c *Cluster) start(t testing.TB, bin string) error {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), c.opts.StartTimeout)
	defer cancel()

	etcd, err := embedetcd.Start(ctx, embedetcd.Config{Dir: filepath.Join(dir, "etcd")})
	if err != nil {
		return err
	}
	c.closeEtcd = sync.OnceFunc(etcd.Close)
	c.EtcdEndpoint = etcd.Endpoint()
	t.Cleanup(c.closeEtcd)

	saKey, err := writeServiceAccountKey(dir)
	if err != nil {
		return err
	}
	token, tokenFile, err := writeTokenFile(dir)
	if err != nil {
		return err
	}
	c.Token = token
	c.LogFile = filepath.Join(dir, "kube-apiserver.log")
	certDir := filepath.Join(dir, "certs")
	// Registered when start returns, after the apiserver's stop, so that it
	// runs before the stop (cleanups run last-in first-out): the tail shows
	// the failure, not the shutdown.
	defer t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubetest: cluster %s: kube-apiserver log (%s) tail:\n%s", c.Name, c.LogFile, fileTail(c.LogFile, logTailLines))
		}
	})

	args := []string{
		"--etcd-servers=http://" + etcd.Endpoint(),
		"--bind-address=127.0.0.1",
		// The default advertise address is the host's default-route
		// interface, so the apiserver fails on a host without one; and a
		// loopback one is refused by the endpoint reconciler, which only
		// maintains default/kubernetes' endpoints (nothing runs to use them).
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + certDir,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=" + c.opts.ServiceClusterIPRange,
	}
	if err := c.startAPIServer(ctx, t, bin, args); err != nil {
		return err
	}
	if err := c.connect(certDir, filepath.Join(dir, "kubeconfig")); err != nil {
		return err
	}
	if c.opts.SkipMCSCRDs {
		return nil
	}
	began := time.Now()
	crdCtx, cancelCRD := context.WithTimeout(t.Context(), c.opts.StartTimeout)
	defer cancelCRD()
	if err := c.installMCSCRDs(crdCtx); err != nil {
		return err
	}
	t.Logf("kubetest: cluster %s: mcs-api CRDs served in %s", c.Name, time.Since(began).Round(10*time.Millisecond))
	return nil
}

// startAPIServer runs the apiserver on a free port and waits for /readyz.
// If the port was taken before the apiserver bound it, it tries another.
func (c *Cluster) startAPIServer(ctx context.Context, t testing.TB, bin string, args []string) error {
	const attempts = 3
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		c.URL = apiserverURL(port)
		argv := slices.Concat(args, []string{"--secure-port=" + strconv.Itoa(port)}, c.opts.ExtraArgs)
		proc, err := startProcess(bin, argv, c.LogFile)
		if err != nil {
			return err
		}
		c.proc = proc
		t.Cleanup(func() {
			if err := proc.stop(c.opts.StopTimeout); err != nil {
				t.Logf("kubetest: cluster %s: %v", c.Name, err)
			}
		})
		err = waitReady(ctx, c.URL, c.Token, proc)
		if err == nil {
			return nil
		}
		if attempt < attempts && isExited(proc) && proc.addrInUse() {
			continue
		}
		_ = proc.stop(c.opts.StopTimeout)
		return err
	}
}

func isExited(p *process) bool { return !p.Running() }

// waitReady polls url/readyz until it answers 200, the process exits or
// ctx is done. The certificate is not checked: it may not be written yet.
func waitReady(ctx context.Context, url, token string, proc *process) error {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if isExited(proc) {
			return false, proc.exitedErr()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			last = err
			return false, nil
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			last = fmt.Errorf("GET /readyz: %s", resp.Status)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		if ctx.Err() != nil && last != nil {
			err = fmt.Errorf("%w (last: %v)", err, last)
		}
		return fmt.Errorf("wait for %s/readyz: %w", url, err)
	}
	return nil
}

// connect sets RESTConfig, writes the kubeconfig file and builds the
// clients, trusting the serving certificate the apiserver wrote to certDir.
func (c *Cluster) connect(certDir, kubeconfig string) error {
	// The self-signed serving certificate is written before the apiserver
	// listens; the file holds the certificate and the CA that signed it.
	caPEM, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt"))
	if err != nil {
		return fmt.Errorf("read apiserver certificate: %w", err)
	}
	c.RESTConfig = &rest.Config{
		Host:            c.URL,
		BearerToken:     c.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		QPS:             100,
		Burst:           200,
		UserAgent:       "kubetest/" + c.Name,
	}
	c.Kubeconfig = kubeconfig
	if err := writeKubeconfig(c.Kubeconfig, c.Name, c.URL, caPEM, c.Token); err != nil {
		return err
	}
	if c.Kube, err = kubernetes.NewForConfig(c.RESTConfig); err != nil {
		return fmt.Errorf("build kubernetes client: %w", err)
	}
	if c.MCS, err = mcsclient.NewForConfig(c.RESTConfig); err != nil {
		return fmt.Errorf("build mcs-api client: %w", err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(c.RESTConfig); err != nil {
		return fmt.Errorf("build dynamic client: %w", err)
	}
	return nil
}

// poll calls cond every 100ms until it returns nil or ctx is done, and
// then returns cond's last error.
func poll(ctx context.Context, cond func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		last = cond(ctx)
		return last == nil, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return err
}
