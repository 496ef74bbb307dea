package decision

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

func TestCheckManualFailover(t *testing.T) {
	lagging := func(in *Input) {
		in.MaxLag = 1 << 20
		in.Views["pg3"] = view(status.Healthy, standby(100*gib-(2<<20), 1, 5432))
	}
	cases := []struct {
		name   string
		mutate func(in *Input)
		target string
		force  bool
		want   ManualCheck
	}{
		{"caught-up standby", func(in *Input) {}, "pg2", false,
			ManualCheck{Allowed: true, Reason: "manual failover to pg2 (0 bytes behind the most advanced node)"}},
		{"small lag is allowed", func(in *Input) {}, "pg3", false,
			ManualCheck{Allowed: true, LossBytes: 10, Reason: "manual failover to pg3 (10 bytes behind the most advanced node)"}},
		{"lagging standby refused", lagging, "pg3", false,
			ManualCheck{Unsafe: "pg3 is 2097152 bytes behind the primary's last known position 19/0 (max_lag_on_failover 1048576)", LossBytes: 2 << 20,
				Reason: "pg3 is 2097152 bytes behind the primary's last known position 19/0 (max_lag_on_failover 1048576); add \"force\": true to accept the loss"}},
		{"lagging standby forced", lagging, "pg3", true,
			ManualCheck{Allowed: true, Unsafe: "pg3 is 2097152 bytes behind the primary's last known position 19/0 (max_lag_on_failover 1048576)", LossBytes: 2 << 20,
				Reason: "forced manual failover to pg3 although pg3 is 2097152 bytes behind the primary's last known position 19/0 (max_lag_on_failover 1048576)"}},
		{"lag measured against the best standby when the down primary was never sampled", func(in *Input) {
			lagging(in)
			in.Views["pg1"] = view(status.Down, nil)
			in.Views["pg2"] = view(status.Healthy, standby(100*gib, 1, 0))
		}, "pg3", false,
			ManualCheck{Unsafe: "pg3 is 2097152 bytes behind pg2 at 19/0 (max_lag_on_failover 1048576)", LossBytes: 2 << 20,
				Reason: "pg3 is 2097152 bytes behind pg2 at 19/0 (max_lag_on_failover 1048576); add \"force\": true to accept the loss"}},
		{"lag measured against the down primary's last sample", func(in *Input) {
			lagging(in)
			in.Views["pg1"] = view(status.Down, primarySample(100*gib+(4<<20), ""))
			in.Views["pg2"] = view(status.Healthy, standby(100*gib, 1, 0))
		}, "pg3", false,
			ManualCheck{Unsafe: "pg3 is 6291456 bytes behind the primary's last known position 19/400000 (max_lag_on_failover 1048576)", LossBytes: 6 << 20,
				Reason: "pg3 is 6291456 bytes behind the primary's last known position 19/400000 (max_lag_on_failover 1048576); add \"force\": true to accept the loss"}},
		{"not the synchronous standby", func(in *Input) { in.SyncMode, in.SyncSet = meta.SyncOn, []string{"pg3"} }, "pg2", false,
			ManualCheck{Unsafe: "pg2 is not in the synchronous set [pg3]: it may lack acknowledged commits",
				Reason: "pg2 is not in the synchronous set [pg3]: it may lack acknowledged commits; add \"force\": true to accept the loss"}},
		{"the synchronous standby", func(in *Input) { in.SyncMode, in.SyncSet = meta.SyncOn, []string{"pg3"} }, "pg3", false,
			ManualCheck{Allowed: true, LossBytes: 10, Reason: "manual failover to pg3 (10 bytes behind the most advanced node)"}},
		{"unhealthy target refused even when forced", func(in *Input) { in.Views["pg2"] = view(status.Down, nil) }, "pg2", true,
			ManualCheck{Reason: "pg2 is not a healthy standby (down)"}},
		{"writable target refused", func(in *Input) { in.Views["pg2"] = view(status.Healthy, primarySample(100*gib, "")) }, "pg2", true,
			ManualCheck{Reason: "pg2 is not a standby in recovery"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := healthy()
			c.mutate(&in)
			if d := cmp.Diff(c.want, CheckManualFailover(in, c.target, c.force)); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}
}
