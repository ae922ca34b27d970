package federator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/causeway-mesh/causeway/federator/store"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// errNotLeader ends a term: the session was lost or the campaign failed.
var errNotLeader = errors.New("federator: not the leader")

// lead campaigns for the cluster's leadership and, once elected, runs the
// writers (export side, import side, sink, the healing of the cluster and
// bundle records) until ctx ends, the session's lease is lost, or the
// sink fails. On the way out it resigns, so a standby replica takes over
// at once rather than after the lease TTL.
func (f *Federator) lead(ctx context.Context) error {
	sess, err := concurrency.NewSession(f.store.Client(),
		concurrency.WithTTL(int(f.cfg.leaderTTL().Seconds())), concurrency.WithContext(ctx))
	if err != nil {
		f.log.Warn("leader election: no etcd session", "err", err)
		return errNotLeader
	}
	defer sess.Close()
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the term ends with the session
		select {
		case <-sess.Done():
			cancel()
		case <-tctx.Done():
		}
	}()

	el, err := f.campaign(ctx, tctx, sess)
	if err != nil {
		return err
	}
	f.setLeader(true)
	f.log.Info("elected leader", "instance", f.cfg.instance())
	defer func() {
		f.setLeader(false)
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		_ = el.Resign(rctx)
		rcancel()
	}()

	return f.runTerm(ctx, tctx, cancel)
}

// campaign waits until this replica is elected on sess, or returns
// errNotLeader when the campaign fails or ctx ends.
func (f *Federator) campaign(ctx, tctx context.Context, sess *concurrency.Session) (*concurrency.Election, error) {
	el := concurrency.NewElection(sess, store.ElectionPrefix(f.cfg.Cluster))
	// Campaign runs on its own goroutine: when tctx ends it resigns with
	// the etcd client's own context, which blocks while etcd is
	// unreachable until the client is closed — and the client's owner
	// closes it only after Run returned. Stopping must not wait for that.
	campaign := make(chan error, 1)
	go func() { campaign <- el.Campaign(tctx, f.cfg.instance()) }()
	var err error
	select {
	case err = <-campaign:
	case <-ctx.Done():
		return nil, errNotLeader
	}
	if err != nil {
		if ctx.Err() == nil {
			f.log.Warn("leader election: campaign ended", "err", err)
		}
		return nil, errNotLeader
	}
	return el, nil
}

// runTerm runs the leader's writers until the term (tctx) ends; a failing
// sink ends it through cancel. It returns the sink's error, nil when ctx
// ended, or errNotLeader when the lease was lost.
func (f *Federator) runTerm(ctx, tctx context.Context, cancel context.CancelFunc) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fatal error
	)
	fail := func(what string, err error) {
		if err == nil || tctx.Err() != nil {
			return // stopped because the term ended
		}
		mu.Lock()
		if fatal == nil {
			fatal = fmt.Errorf("run %s of %s: %w", what, f.cfg.Cluster, err)
		}
		mu.Unlock()
		cancel()
	}
	wg.Go(func() { f.runExports(tctx) })
	wg.Go(func() { f.runImports(tctx) })
	wg.Go(func() { f.runHeal(tctx) })
	if f.cfg.Sink != nil {
		wg.Go(func() {
			select { // the sink deletes what the view lacks: only from a synced view
			case <-tctx.Done():
				return
			case <-f.synced:
			}
			fail("import sink", f.cfg.Sink.Run(tctx, f.feed, f.kickImports))
		})
	}
	<-tctx.Done()
	wg.Wait()
	switch {
	case fatal != nil:
		return fatal
	case ctx.Err() != nil:
		return nil
	}
	f.log.Warn("leadership lost; campaigning again")
	return errNotLeader
}

// IsLeader reports whether this replica currently leads its cluster.
func (f *Federator) IsLeader() bool { return f.leader.Load() }

// Leader returns the instance name of the cluster's current leader.
func (f *Federator) Leader(ctx context.Context) (string, error) {
	resp, err := f.store.Client().Get(ctx, store.ElectionPrefix(f.cfg.Cluster)+"/",
		clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("read leader of %s: %w", f.cfg.Cluster, err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

func (f *Federator) setLeader(v bool) {
	f.leader.Store(v)
	if v {
		f.metrics.leader.Set(1)
	} else {
		f.metrics.leader.Set(0)
	}
}
