package store

import (
	"context"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// txnWriters bounds the transactions a batched write has in flight. etcd
// commits concurrent transactions together (one raft entry, one fsync),
// so writing thousands of records costs a few rounds of round trips, not
// one per 64 records in a row.
const txnWriters = 8

// txnBatch is one transaction of a batched write: ops, if every cmp holds.
type txnBatch struct {
	cmps []clientv3.Cmp
	ops  []clientv3.Op
}

// commitBatches commits every batch, at most txnWriters at once, and
// returns the revision of the last write (the highest). failed is the
// index of a batch whose comparisons did not hold (-1: none); that batch
// wrote nothing and the ones not started yet are not committed. Batches
// are independent: after an error or a failed batch, any of the others
// may have been written.
func (s *Store) commitBatches(ctx context.Context, batches []txnBatch) (rev int64, failed int, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex // guards rev, failed, err, next
		next int
		wg   sync.WaitGroup
	)
	failed = -1
	for range min(txnWriters, len(batches)) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := i >= len(batches) || err != nil || failed >= 0
				mu.Unlock()
				if stop {
					return
				}
				resp, terr := s.cli.Txn(ctx).If(batches[i].cmps...).Then(batches[i].ops...).Commit()
				mu.Lock()
				switch {
				case terr != nil:
					if err == nil {
						err = terr
					}
					cancel()
				case !resp.Succeeded:
					if failed < 0 {
						failed = i
					}
				default:
					rev = max(rev, resp.Header.Revision)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return rev, failed, err
}
