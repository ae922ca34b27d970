package authz

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// ReasonRateLimited is the audit reason of a flow or request refused by a
// RateLimitPolicy.
const ReasonRateLimited DecisionReason = "RateLimited"

// AuditRecord is one authorization decision: who called what, and what
// was decided why.
type AuditRecord struct {
	Time time.Time `json:"time"`
	// Principal is the caller's SPIFFE ID.
	Principal string `json:"principal"`
	// SourceCluster is the caller's cluster.
	SourceCluster string `json:"sourceCluster"`
	// Service is the exported service, namespace/name.
	Service string `json:"service"`
	Port    int32  `json:"port"`
	// Method and Path are set for L7 requests only.
	Method  string         `json:"method,omitempty"`
	Path    string         `json:"path,omitempty"`
	Allowed bool           `json:"allowed"`
	Reason  DecisionReason `json:"reason"`
	// Policy is the deciding policy, namespace/name; empty for the
	// default action.
	Policy string `json:"policy,omitempty"`
}

// NewAuditRecord returns the record of decision d for p calling port of
// svc at now (l7 nil for an L4 flow).
func NewAuditRecord(now time.Time, svc ServiceKey, port int32, p Principal, l7 *Request, d Decision) AuditRecord {
	r := AuditRecord{Time: now, Principal: p.String(), SourceCluster: p.Cluster, Service: svc.String(), Port: port,
		Allowed: d.Allowed, Reason: d.Reason, Policy: d.Policy}
	if l7 != nil {
		r.Method, r.Path = l7.Method, l7.Path
	}
	return r
}

// AuditSink receives audit records. Record must not block the data path:
// a sink that cannot keep up drops records and counts them.
type AuditSink interface {
	Record(AuditRecord)
}

// defaultAuditQueue is JSONLinesSink's queue length if none is given.
const defaultAuditQueue = 1024

// JSONLinesSink writes records to an io.Writer, one JSON object per line,
// from its own goroutine. Record never blocks: when the queue is full the
// record is dropped and counted (Dropped).
type JSONLinesSink struct {
	queue   chan AuditRecord
	done    chan struct{} // closed when the writer goroutine has returned
	dropped atomic.Uint64
	err     error // first write error; read after done is closed

	mu     sync.RWMutex // guards closed; held for reading while sending to queue
	closed bool
	once   sync.Once
}

var _ AuditSink = (*JSONLinesSink)(nil)

// NewJSONLinesSink starts a sink writing to w with a queue of queueLen
// records (if zero or negative, 1024). Close stops it.
func NewJSONLinesSink(w io.Writer, queueLen int) *JSONLinesSink {
	if queueLen <= 0 {
		queueLen = defaultAuditQueue
	}
	s := &JSONLinesSink{queue: make(chan AuditRecord, queueLen), done: make(chan struct{})}
	go s.run(w)
	return s
}

// Record queues r for writing, or drops and counts it if the queue is full
// or the sink is closed.
func (s *JSONLinesSink) Record(r AuditRecord) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.dropped.Add(1)
		return
	}
	select {
	case s.queue <- r:
	default:
		s.dropped.Add(1)
	}
}

// Dropped is how many records were dropped so far.
func (s *JSONLinesSink) Dropped() uint64 { return s.dropped.Load() }

// Close writes the records queued, stops the goroutine and returns the
// first write error, if any. It is idempotent; later Records are dropped.
func (s *JSONLinesSink) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.queue)
		s.mu.Unlock()
	})
	<-s.done
	return s.err
}

func (s *JSONLinesSink) run(w io.Writer) {
	defer close(s.done)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	note := func(err error) {
		if err != nil && s.err == nil {
			s.err = fmt.Errorf("write audit record: %w", err)
		}
	}
	for r := range s.queue {
		note(enc.Encode(r))
		if len(s.queue) == 0 {
			note(bw.Flush())
		}
	}
	note(bw.Flush())
}
