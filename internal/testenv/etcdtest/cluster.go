package etcdtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/internal/lib/embedetcd"
	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Timing of test clusters: a 50ms tick and a 500ms election timeout make
// elections quick without flapping under the race detector on small CI
// machines (etcd's defaults are 100ms and 1s).
const (
	clusterTickMs     = 50
	clusterElectionMs = 500
	memberStartWait   = 60 * time.Second
	leaderWait        = 30 * time.Second
	peerDrainWait     = 10 * time.Second
)

// Cluster is an n-member etcd cluster on 127.0.0.1 (clients may reach
// it on another local address, see StartClusterOn), started by
// StartCluster and stopped by t.Cleanup. Each member keeps its name,
// data directory and ports for the cluster's lifetime, so a stopped member
// restarts as itself and clients' endpoint lists stay valid.
//
// Methods that can fail call t.Fatalf, so call them from the test's
// goroutine; Endpoints, Endpoint, Leader and Running are safe anywhere.
type Cluster struct {
	t          testing.TB
	clientHost string // where the client bridges listen
	opts       ClusterOptions
	members    []*member
	cli        *clientv3.Client
	user, pw   string // credentials of Client and NewClient; "" before UseCredentials

	mu sync.Mutex // guards each member's etcd
}

// member is one member of a Cluster. Clients and the other members
// reach it through bridges, whose addresses are its endpoint and its
// advertised peer URL; the member listens on the reserved ports.
type member struct {
	name         string
	dir          string
	client, peer *embedetcd.PortReservation
	clientBridge *bridge     // down while stopped
	peerBridge   *bridge     // down while stopped
	etcd         *embed.Etcd // nil while stopped; guarded by Cluster.mu
}

// StartCluster starts an n-member cluster in t.TempDir(), waits
// until every member serves, and returns it with Client() connected to all
// members. Members, reservations and clients are closed by t.Cleanup.
//
// Ports are reserved (see embedetcd.PortReservation) for the cluster's lifetime;
// where that is not possible and a probed port is taken before etcd binds
// it, the whole cluster is started again on new ports.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartClusterOn(t, n, "127.0.0.1")
}

// StartClusterOn is StartCluster with the members' client
// endpoints on clientHost, a local address other processes can reach (a
// test in a network namespace serves clients in other namespaces).
func StartClusterOn(t testing.TB, n int, clientHost string) *Cluster {
	t.Helper()
	return StartClusterWith(t, n, clientHost, ClusterOptions{})
}

// ClusterOptions are the settings of a cluster beyond its size and client
// host. The zero value is a plain cluster.
type ClusterOptions struct {
	// TLS, when set, makes every member's client listener serve TLS only
	// with these files (embedetcd.NewTLSFiles); clients verify the
	// server as embedetcd.ServerName.
	TLS *embedetcd.TLSFiles
	// BcryptCost is the cost etcd hashes user passwords with once auth is
	// on. If zero, etcd's default.
	BcryptCost uint
}

// StartClusterWith is StartClusterOn with options.
func StartClusterWith(t testing.TB, n int, clientHost string, o ClusterOptions) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("start etcd cluster: %d members", n)
	}
	base := t.TempDir()
	c := &Cluster{t: t, clientHost: clientHost, opts: o}
	t.Cleanup(c.close)
	const attempts = 3
	for attempt := 1; ; attempt++ {
		err := c.start(filepath.Join(base, fmt.Sprintf("attempt-%d", attempt)), n)
		if err == nil {
			break
		}
		c.close()
		if attempt == attempts || !embedetcd.IsAddrInUse(err) {
			t.Fatalf("start etcd cluster of %d: %v", n, err)
		}
	}
	c.cli = c.NewClient()
	return c
}

// start creates the members under dir and starts them together: none is
// ready before a quorum has started.
func (c *Cluster) start(dir string, n int) error {
	c.members = make([]*member, n)
	initial := make([]string, n)
	for i := range c.members {
		m := &member{name: fmt.Sprintf("m%d", i), dir: filepath.Join(dir, fmt.Sprintf("m%d", i))}
		c.members[i] = m
		var err error
		if m.client, err = embedetcd.ReservePort("127.0.0.1"); err != nil {
			return fmt.Errorf("member %d client port: %w", i, err)
		}
		if m.peer, err = embedetcd.ReservePort("127.0.0.1"); err != nil {
			return fmt.Errorf("member %d peer port: %w", i, err)
		}
		if m.clientBridge, err = newBridge(c.clientHost, m.client.URL().Host); err != nil {
			return fmt.Errorf("member %d client bridge: %w", i, err)
		}
		if m.peerBridge, err = newBridge("127.0.0.1", m.peer.URL().Host); err != nil {
			return fmt.Errorf("member %d peer bridge: %w", i, err)
		}
		m.peerBridge.setUp(true)
		u := m.peerBridge.URL()
		initial[i] = m.name + "=" + u.String()
	}
	initialCluster := strings.Join(initial, ",")
	token := "causeway-test-" + rand.Text()
	for i, m := range c.members {
		cfg := c.memberConfig(m)
		cfg.InitialCluster = initialCluster
		cfg.InitialClusterToken = token
		cfg.ClusterState = embed.ClusterStateFlagNew
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			return fmt.Errorf("start member %d: %w", i, err)
		}
		c.mu.Lock()
		m.etcd = e
		c.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), memberStartWait)
	defer cancel()
	for i, m := range c.members {
		if err := embedetcd.WaitReady(ctx, m.etcd, memberStartWait); err != nil {
			return fmt.Errorf("member %d: %w", i, err)
		}
		m.clientBridge.setUp(true)
	}
	return nil
}

// memberConfig is m's embed config; the initial-cluster settings only
// matter on the first start (a restart finds the member in its data dir).
func (c *Cluster) memberConfig(m *member) *embed.Config {
	clientURL := m.client.URL()
	if c.opts.TLS != nil {
		clientURL.Scheme = "https"
	}
	cfg := embedetcd.MemberConfig(m.name, m.dir, clientURL, m.peer.URL())
	if c.opts.TLS != nil {
		cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = c.opts.TLS.CertFile, c.opts.TLS.KeyFile
	}
	if c.opts.BcryptCost != 0 {
		cfg.BcryptCost = c.opts.BcryptCost
	}
	cfg.AdvertisePeerUrls = []url.URL{m.peerBridge.URL()}
	cfg.SocketOpts.ReusePort = m.client.Held() || m.peer.Held()
	cfg.TickMs = clusterTickMs
	cfg.ElectionMs = clusterElectionMs
	cfg.UnsafeNoFsync = true // members stop gracefully; the page cache survives
	return cfg
}

// close stops every member, cuts every connection through the bridges,
// releases the ports and checks that no connection between members is
// left. Safe to call again.
func (c *Cluster) close() {
	for i, m := range c.members {
		if m != nil {
			c.stop(i)
		}
	}
	for _, m := range c.members {
		if m == nil {
			continue
		}
		for _, b := range []*bridge{m.clientBridge, m.peerBridge} {
			if b != nil {
				b.close()
			}
		}
		for _, r := range []*embedetcd.PortReservation{m.client, m.peer} {
			if r != nil {
				r.Close()
			}
		}
	}
	waitPeerConnsDrained(peerDrainWait)
}

// peerConnMarkers mark the goroutines of HTTP connections between members
// (rafthttp streams and pipelines): client loops in one member, server
// loops in another.
var peerConnMarkers = []string{
	"net/http.(*persistConn)",
	"net/http.(*conn).serve",
	"net/http.(*connReader).backgroundRead",
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp.",
}

// waitPeerConnsDrained waits up to d until no goroutine serves a
// connection between members. A stopped etcd does not wait for them: its
// peer http.Server shuts down with a 1s grace, and a connection whose read
// deadline etcd's timeoutConn re-armed (rafthttp.ConnReadTimeout, 5s)
// outlives it, which goleak in the packages using Cluster would
// report. Closing the peer bridges ends those connections, so this is a
// safety net that returns at once; etcd's own tests wait the same way
// (client/pkg/testutil.CheckAfterTest). It sees every goroutine of the
// process, so an HTTP test running in parallel only makes it wait the
// full d; nothing fails here.
func waitPeerConnsDrained(d time.Duration) {
	deadline := time.Now().Add(d)
	buf := make([]byte, 1<<20)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		n := runtime.Stack(buf, true)
		for n == len(buf) {
			buf = make([]byte, 2*len(buf))
			n = runtime.Stack(buf, true)
		}
		busy := false
		for _, m := range peerConnMarkers {
			if bytes.Contains(buf[:n], []byte(m)) {
				busy = true
				break
			}
		}
		if !busy || time.Now().After(deadline) {
			return
		}
		<-tick.C
	}
}

// stop stops member i if it runs and reports whether it did. A leader
// first hands its leadership over, and the other members learn the new
// leader, while the peers can still answer (as etcd's graceful stop does,
// and so a client reconnecting to a survivor finds a leader); then the
// member's client and peer connections are cut and it closes. So the
// close waits neither for open watch streams (etcd's request timeout,
// ~6s), nor for a leader transfer to a peer that cannot answer (the same),
// nor for the peers' streams to end (1s).
func (c *Cluster) stop(i int) bool {
	m := c.members[i]
	c.mu.Lock()
	e := m.etcd
	m.etcd = nil // from here on, Leader ignores it
	c.mu.Unlock()
	if e != nil && e.Server.Leader() == e.Server.MemberID() {
		// A failed hand-over is tried again (and logged) by e.Close.
		if e.Server.TryTransferLeadershipOnShutdown() == nil {
			c.awaitLeader(leaderWait)
		}
	}
	if m.clientBridge != nil {
		m.clientBridge.setUp(false)
	}
	if m.peerBridge != nil {
		m.peerBridge.setUp(false)
	}
	if e != nil {
		e.Close()
	}
	return e != nil
}

// awaitLeader waits up to d until the running members agree on a running
// leader, if any member runs.
func (c *Cluster) awaitLeader(d time.Duration) {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for c.Leader() < 0 && c.anyRunning() && time.Now().Before(deadline) {
		<-tick.C
	}
}

func (c *Cluster) anyRunning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		if m != nil && m.etcd != nil {
			return true
		}
	}
	return false
}

// Size is the number of members, running or not.
func (c *Cluster) Size() int { return len(c.members) }

// Endpoints are the client host:ports of all members, running or not, in
// member order.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i := range c.members {
		eps[i] = c.Endpoint(i)
	}
	return eps
}

// Endpoint is the client host:port of member i. It is a bridge to the
// member's client port that refuses connections while the member is
// stopped; it never changes.
func (c *Cluster) Endpoint(i int) string { return c.members[i].clientBridge.Addr() }

// Client is a client of every member, closed by t.Cleanup.
func (c *Cluster) Client() *clientv3.Client { return c.cli }

// NewClient returns a new client of the given endpoints (every member when
// none is given), closed by t.Cleanup before the cluster stops.
func (c *Cluster) NewClient(endpoints ...string) *clientv3.Client {
	c.t.Helper()
	if len(endpoints) == 0 {
		endpoints = c.Endpoints()
	}
	cfg := clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		Username:    c.user,
		Password:    c.pw,
	}
	if c.opts.TLS != nil {
		tc, err := embedetcd.ClientTLS(c.opts.TLS.CAFile)
		if err != nil {
			c.t.Fatalf("etcd client TLS: %v", err)
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		c.t.Fatalf("connect to etcd %v: %v", endpoints, err)
	}
	c.t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// UseCredentials makes Client and later NewClient clients authenticate as
// user (once auth is on, a client without a user may do nothing).
func (c *Cluster) UseCredentials(user, password string) {
	c.t.Helper()
	c.user, c.pw = user, password
	old := c.cli
	c.cli = c.NewClient()
	_ = old.Close()
}

// TLS returns the cluster's client TLS files, nil when it serves plain
// HTTP/2.
func (c *Cluster) TLS() *embedetcd.TLSFiles { return c.opts.TLS }

// Running reports whether member i runs.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i].etcd != nil
}

// StopMember stops member i and waits until it is down. A leader first
// hands its leadership over and waits until the others follow the new
// leader, as on a graceful stop; then the member's client connections are
// cut at once, as in a crash, so clients resume on the survivors without
// waiting for the member to give up on open streams. Stopping a stopped
// member fails the test.
func (c *Cluster) StopMember(i int) {
	c.t.Helper()
	if !c.stop(i) {
		c.t.Fatalf("stop etcd member %d: not running", i)
	}
}

// RestartMember starts the stopped member i again, with its data and
// addresses, and waits until it serves: it has rejoined the cluster and
// applied everything committed before its rejoin.
func (c *Cluster) RestartMember(i int) {
	c.t.Helper()
	m := c.members[i]
	if c.Running(i) {
		c.t.Fatalf("restart etcd member %d: still running", i)
	}
	m.peerBridge.setUp(true)
	e, err := embed.StartEtcd(c.memberConfig(m))
	if err != nil {
		c.t.Fatalf("restart etcd member %d: %v", i, err)
	}
	if err := embedetcd.WaitReady(context.Background(), e, memberStartWait); err != nil {
		e.Close()
		c.t.Fatalf("restart etcd member %d: %v", i, err)
	}
	c.mu.Lock()
	m.etcd = e
	c.mu.Unlock()
	m.clientBridge.setUp(true)
}

// Leader returns the index of the running member that every running
// member follows, or -1 while they do not agree on a running leader.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	byID := map[types.ID]int{}
	for i, m := range c.members {
		if m != nil && m.etcd != nil {
			byID[m.etcd.Server.MemberID()] = i
		}
	}
	leader := -1
	for _, m := range c.members {
		if m == nil || m.etcd == nil {
			continue
		}
		i, ok := byID[m.etcd.Server.Leader()]
		if !ok || (leader != -1 && i != leader) {
			return -1
		}
		leader = i
	}
	return leader
}

// WaitLeader waits until the running members agree on a running leader
// and returns its index.
func (c *Cluster) WaitLeader() int {
	c.t.Helper()
	c.awaitLeader(leaderWait)
	l := c.Leader()
	if l < 0 {
		c.t.Fatalf("etcd cluster: no leader after %s", leaderWait)
	}
	return l
}

// Follower returns the index of a running member that is not the leader,
// waiting for a leader first.
func (c *Cluster) Follower() int {
	c.t.Helper()
	l := c.WaitLeader()
	for i := range c.members {
		if i != l && c.Running(i) {
			return i
		}
	}
	c.t.Fatalf("etcd cluster: no running follower")
	return -1
}
