package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/clustermgr/clustermgr/pkg/metrics"
)

func TestOperationEnded(t *testing.T) {
	m := metrics.New(func() metrics.Snapshot { return metrics.Snapshot{} })
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	m.OperationEnded(metrics.OperationDone{Kind: "switchover", State: "succeeded", Created: t0,
		Steps: map[string]time.Time{"checkpoint": t0.Add(100 * time.Millisecond), "promote": t0.Add(700 * time.Millisecond)}})
	m.OperationEnded(metrics.OperationDone{Kind: "failover", State: "succeeded", Created: t0, Steps: map[string]time.Time{"promote": t0.Add(2 * time.Second)}})
	m.OperationEnded(metrics.OperationDone{Kind: "failover", State: "failed", Created: t0}) // counted, no gap
	m.OperationEnded(metrics.OperationDone{Kind: "rejoin", State: "succeeded", Created: t0})
	want := `
# HELP clustermgr_failover_promotion_seconds Succeeded failovers run here: from the decision to fail over to the new primary's promotion.
# TYPE clustermgr_failover_promotion_seconds histogram
clustermgr_failover_promotion_seconds_bucket{le="0.1"} 0
clustermgr_failover_promotion_seconds_bucket{le="0.25"} 0
clustermgr_failover_promotion_seconds_bucket{le="0.5"} 0
clustermgr_failover_promotion_seconds_bucket{le="0.75"} 0
clustermgr_failover_promotion_seconds_bucket{le="1"} 0
clustermgr_failover_promotion_seconds_bucket{le="1.5"} 0
clustermgr_failover_promotion_seconds_bucket{le="2"} 1
clustermgr_failover_promotion_seconds_bucket{le="3"} 1
clustermgr_failover_promotion_seconds_bucket{le="5"} 1
clustermgr_failover_promotion_seconds_bucket{le="10"} 1
clustermgr_failover_promotion_seconds_bucket{le="30"} 1
clustermgr_failover_promotion_seconds_bucket{le="+Inf"} 1
clustermgr_failover_promotion_seconds_sum 2
clustermgr_failover_promotion_seconds_count 1
# HELP clustermgr_operations_ended_total Operations this replica ran (as leader) to their end, by kind and final state (succeeded, failed, cancelled).
# TYPE clustermgr_operations_ended_total counter
clustermgr_operations_ended_total{kind="failover",state="failed"} 1
clustermgr_operations_ended_total{kind="failover",state="succeeded"} 1
clustermgr_operations_ended_total{kind="rejoin",state="succeeded"} 1
clustermgr_operations_ended_total{kind="switchover",state="succeeded"} 1
# HELP clustermgr_switchover_write_gap_seconds Succeeded switchovers run here: from the old primary's last checkpoint before its stop (it takes writes until then) to the new primary's promotion.
# TYPE clustermgr_switchover_write_gap_seconds histogram
clustermgr_switchover_write_gap_seconds_bucket{le="0.1"} 0
clustermgr_switchover_write_gap_seconds_bucket{le="0.25"} 0
clustermgr_switchover_write_gap_seconds_bucket{le="0.5"} 0
clustermgr_switchover_write_gap_seconds_bucket{le="0.75"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="1"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="1.5"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="2"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="3"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="5"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="10"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="30"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="+Inf"} 1
clustermgr_switchover_write_gap_seconds_sum 0.6
clustermgr_switchover_write_gap_seconds_count 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"clustermgr_failover_promotion_seconds", "clustermgr_operations_ended_total", "clustermgr_switchover_write_gap_seconds"); err != nil {
		t.Fatal(err)
	}
}
