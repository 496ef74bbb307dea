package metrics

import (
	"bufio"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// Snapshot is the fleet as one replica sees it at a scrape.
type Snapshot struct {
	Raft       Raft
	Shards     []Shard
	Operations []Operation
}

// Raft is the replica's Raft state.
type Raft struct {
	State                            string // Leader, Follower, Candidate, Shutdown
	Term, LastIndex, Commit, Applied uint64
	Voters                           int
	LeaderKnown                      bool
}

// Shard is one shard and its nodes.
type Shard struct {
	Cluster, Name, State string
	Epoch                uint64
	SyncStandbys         int
	// Synchronous: the shard's synchronous mode is on or strict.
	Synchronous bool
	// LastBackup is the time of its newest verified backup (zero: none);
	// BackupInterval the longest gap of its backup schedule (0: none).
	LastBackup     time.Time
	BackupInterval time.Duration
	Nodes          []Node
}

// Node is one PostgreSQL node as this replica sees it.
type Node struct {
	Name, Role, Health string
	Timeline           uint32
	LagBytes           int64
	LagSeconds         float64
	Streaming          bool
}

// Operation counts the operations the state holds of one kind and state.
type Operation struct {
	Kind, State string
	Count       int
}

// shardStates and nodeHealths are the values of the one-hot state gauges.
func shardStates() []string {
	return []string{"healthy", "degraded", "no-primary", "failing-over", "switching-over", "paused"}
}
func nodeHealths() []string { return []string{"healthy", "suspect", "down", "unknown"} }

// Metrics is one replica's registry and instruments.
type Metrics struct {
	reg  *prometheus.Registry
	snap func() Snapshot

	requests     *prometheus.CounterVec
	reqDuration  *prometheus.HistogramVec
	probes       *prometheus.HistogramVec
	skipped      *prometheus.CounterVec
	applies      *prometheus.HistogramVec
	leaderships  prometheus.Counter
	rejectedAuth prometheus.Counter
	opsEnded     *prometheus.CounterVec
	failoverGap  prometheus.Histogram
	switchGap    prometheus.Histogram
}

// OperationDone is an operation this replica ran to its end: its kind,
// final state, start, and when each step was done.
type OperationDone struct {
	Kind, State string
	Created     time.Time
	Steps       map[string]time.Time
}

// New returns the metrics of a replica whose fleet picture snap returns.
func New(snap func() Snapshot) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), snap: snap}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clustermgr_api_requests_total",
		Help: "API requests answered by this replica, by route pattern, method and status code."}, []string{"route", "method", "code"})
	m.reqDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "clustermgr_api_request_duration_seconds",
		Help: "Time to answer an API request, by route pattern and method.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}},
		[]string{"route", "method"})
	m.probes = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "clustermgr_probe_duration_seconds",
		Help: "Duration of this replica's probes of PostgreSQL nodes, by outcome (ok or failed).", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}},
		[]string{"outcome"})
	m.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clustermgr_probes_skipped_total",
		Help: "Probes this replica's rounds did not make, by reason: running (the node's last probe still runs: a hung or slow server), queued (it still waits for a worker: the replica cannot keep up), queue-full, late (its slot came more than half an interval late: a stalled replica). Each stretches a node's probe period by an interval."},
		[]string{"reason"})
	m.applies = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "clustermgr_raft_apply_duration_seconds",
		Help: "Time from proposing a command on this replica (the leader) to its being applied, by outcome (ok, refused, error).", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}},
		[]string{"outcome"})
	m.leaderships = prometheus.NewCounter(prometheus.CounterOpts{Name: "clustermgr_raft_leaderships_total",
		Help: "Times this replica became the group's leader."})
	m.rejectedAuth = prometheus.NewCounter(prometheus.CounterOpts{Name: "clustermgr_api_rejected_auth_total",
		Help: "API requests this replica refused for want of a valid token."})
	m.opsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clustermgr_operations_ended_total",
		Help: "Operations this replica ran (as leader) to their end, by kind and final state (succeeded, failed, cancelled)."}, []string{"kind", "state"})
	gapBuckets := []float64{.1, .25, .5, .75, 1, 1.5, 2, 3, 5, 10, 30}
	m.failoverGap = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "clustermgr_failover_promotion_seconds",
		Help: "Succeeded failovers run here: from the decision to fail over to the new primary's promotion.", Buckets: gapBuckets})
	m.switchGap = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "clustermgr_switchover_write_gap_seconds",
		Help: "Succeeded switchovers run here: from the old primary's last checkpoint before its stop (it takes writes until then) to the new primary's promotion.", Buckets: gapBuckets})
	m.reg.MustRegister(m.requests, m.reqDuration, m.probes, m.skipped, m.applies, m.leaderships, m.rejectedAuth, m.opsEnded, m.failoverGap, m.switchGap,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return m
}

// Handler serves the metrics in the Prometheus text format, gzipped when
// the scraper accepts it (Prometheus does).
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		var out io.Writer = w
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
			defer gz.Close()
			out = gz
		}
		_ = m.WriteText(out)
	})
}

// WriteText writes every metric in the text format: the instruments and
// the process's, then the fleet's picture from a fresh snapshot.
func (m *Metrics) WriteText(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	fams, gerr := m.reg.Gather() // what it could gather even on error
	enc := expfmt.NewEncoder(bw, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	writeFleet(bw, m.snap())
	if err := bw.Flush(); err != nil {
		return err
	}
	return gerr
}

// Registry is the replica's registry of instruments (tests gather from
// it; the fleet's series are written by WriteText alone).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest records one answered API request.
func (m *Metrics) ObserveRequest(route, method string, code int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.reqDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// ObserveProbe records one probe of a node.
func (m *Metrics) ObserveProbe(d time.Duration, ok bool) {
	outcome := "ok"
	if !ok {
		outcome = "failed"
	}
	m.probes.WithLabelValues(outcome).Observe(d.Seconds())
}

// ProbesSkipped records n probes a round did not make, and why.
func (m *Metrics) ProbesSkipped(reason string, n int) {
	m.skipped.WithLabelValues(reason).Add(float64(n))
}

// ObserveApply records one proposed command: outcome is ok, refused (the
// state machine said no) or error (not committed).
func (m *Metrics) ObserveApply(d time.Duration, outcome string) {
	m.applies.WithLabelValues(outcome).Observe(d.Seconds())
}

// LeadershipGained counts one leadership of this replica.
func (m *Metrics) LeadershipGained() { m.leaderships.Inc() }

// RejectedAuth counts one request refused for want of a valid token.
func (m *Metrics) RejectedAuth() { m.rejectedAuth.Inc() }

// OperationEnded counts an operation that ended here and, for a succeeded
// failover or switchover, observes its gap.
func (m *Metrics) OperationEnded(o OperationDone) {
	m.opsEnded.WithLabelValues(o.Kind, o.State).Inc()
	if o.State != "succeeded" {
		return
	}
	promoted, ok := o.Steps["promote"]
	if !ok {
		return
	}
	switch o.Kind {
	case "failover", "manual-failover":
		if !o.Created.IsZero() && promoted.After(o.Created) {
			m.failoverGap.Observe(promoted.Sub(o.Created).Seconds())
		}
	case "switchover":
		if from, ok := o.Steps["checkpoint"]; ok && promoted.After(from) {
			m.switchGap.Observe(promoted.Sub(from).Seconds())
		}
	}
}
