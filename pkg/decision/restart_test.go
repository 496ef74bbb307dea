package decision

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

func TestDecreased(t *testing.T) {
	got := Decreased(map[string]string{"max_connections": "50", "max_wal_senders": "20", "work_mem": "1MB", "max_worker_processes": "x"},
		map[string]string{"max_connections": "100", "max_wal_senders": "10", "work_mem": "4MB", "max_worker_processes": "8"})
	if diff := cmp.Diff([]string{"max_connections"}, got); diff != "" {
		t.Errorf("decreased (-want +got):\n%s", diff)
	}
}

func TestPlanRestart(t *testing.T) {
	healthy := NodeView{Health: status.Healthy}
	in := Input{
		Nodes: []meta.Node{{Name: "pg1", Role: meta.RolePrimary}, {Name: "pg2", Role: meta.RoleStandby}, {Name: "pg3", Role: meta.RoleStandby}},
		Views: map[string]NodeView{"pg1": healthy, "pg2": healthy, "pg3": healthy},
	}
	withSync := in
	withSync.SyncSet = []string{"pg2"}
	withDown := in
	withDown.Views = map[string]NodeView{"pg1": healthy, "pg2": {Health: status.Down}, "pg3": healthy}
	all := map[string][]string{"pg1": {"max_connections"}, "pg2": {"max_connections"}, "pg3": {"max_connections"}}
	for _, c := range []struct {
		name      string
		in        Input
		req       RestartRequest
		pending   map[string][]string
		decreased []string
		want      RestartPlan
		refused   string
	}{
		{name: "rolling: standbys then a switchover", in: in, req: RestartRequest{Rolling: true}, pending: all,
			want: RestartPlan{Standbys: []string{"pg2", "pg3"}, Switchover: true, Reason: "the standbys one at a time, then a switchover that restarts primary pg1 as a standby"}},
		{name: "rolling: the synchronous standby last", in: withSync, req: RestartRequest{Rolling: true}, pending: all,
			want: RestartPlan{Standbys: []string{"pg3", "pg2"}, Switchover: true, Reason: "the standbys one at a time, then a switchover that restarts primary pg1 as a standby"}},
		{name: "rolling with a decrease: the primary first, in place", in: in, req: RestartRequest{Rolling: true}, pending: all, decreased: []string{"max_connections"},
			want: RestartPlan{PrimaryFirst: true, Standbys: []string{"pg2", "pg3"}, Reason: "max_connections decreases: primary pg1 restarts first, in place (a standby may not hold less than its primary), then the standbys one at a time"}},
		{name: "only pending: one standby", in: in, req: RestartRequest{Rolling: true, OnlyPending: true}, pending: map[string][]string{"pg3": {"shared_buffers"}},
			want: RestartPlan{Standbys: []string{"pg3"}, Reason: "the standbys with a restart pending, one at a time; primary pg1 needs none"}},
		{name: "only pending: the primary alone is a switchover", in: in, req: RestartRequest{Rolling: true, OnlyPending: true}, pending: map[string][]string{"pg1": {"shared_buffers"}},
			want: RestartPlan{Switchover: true, Reason: "the standbys one at a time, then a switchover that restarts primary pg1 as a standby"}},
		{name: "only pending: nothing pending", in: in, req: RestartRequest{Rolling: true, OnlyPending: true},
			refused: "no node has a parameter pending a restart"},
		{name: "rolling with a standby down", in: withDown, req: RestartRequest{Rolling: true}, pending: all,
			refused: "standby pg2 is not healthy (down): rejoin it first"},
		{name: "only pending skips the down standby that needs nothing", in: withDown, req: RestartRequest{Rolling: true, OnlyPending: true}, pending: map[string][]string{"pg3": {"x"}},
			want: RestartPlan{Standbys: []string{"pg3"}, Reason: "the standbys with a restart pending, one at a time; primary pg1 needs none"}},
		{name: "one standby", in: in, req: RestartRequest{Node: "pg3"},
			want: RestartPlan{Standbys: []string{"pg3"}, Reason: "restart standby pg3"}},
		{name: "the primary alone, in place", in: in, req: RestartRequest{Node: "pg1"},
			want: RestartPlan{PrimaryFirst: true, Reason: "restart primary pg1 in place (writes pause while it restarts; a rolling restart switches over instead)"}},
		{name: "a down standby alone", in: withDown, req: RestartRequest{Node: "pg2"}, refused: "standby pg2 is not healthy (down): rejoin it instead"},
		{name: "an unknown node", in: in, req: RestartRequest{Node: "pg9"}, refused: `node "pg9" is not in the shard`},
		{name: "a node and rolling", in: in, req: RestartRequest{Node: "pg2", Rolling: true}, refused: "a node is restarted alone: rolling and only_pending are for the whole shard"},
		{name: "the shard at once", in: in, req: RestartRequest{}, refused: `a shard restarts node by node: ask for {"rolling": true} or name a node`},
		{name: "no primary", in: Input{Nodes: []meta.Node{{Name: "pg2", Role: meta.RoleStandby}}}, req: RestartRequest{Rolling: true}, refused: "the shard has no primary"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, refused := PlanRestart(c.in, c.req, c.pending, c.decreased)
			if diff := cmp.Diff(c.want, got); diff != "" || refused != c.refused {
				t.Errorf("plan (-want +got):\n%s\nrefused %q, want %q", diff, refused, c.refused)
			}
		})
	}
}
