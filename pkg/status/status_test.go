package status

import "testing"

func TestNode_TransitionTable(t *testing.T) {
	cases := []struct {
		name      string
		threshold int
		events    []Event
		want      []Health
		changed   []bool
	}{
		{"first answer is healthy", 3, []Event{ProbeOK, ProbeOK}, []Health{Healthy, Healthy}, []bool{true, false}},
		{"refused is down at once", 3, []Event{ProbeOK, ProbeRefused}, []Health{Healthy, Down}, []bool{true, true}},
		{"timeouts debounce to the threshold", 3, []Event{ProbeOK, ProbeFailed, ProbeFailed, ProbeFailed, ProbeFailed},
			[]Health{Healthy, Suspect, Suspect, Down, Down}, []bool{true, true, false, true, false}},
		{"an answer resets the count", 3, []Event{ProbeFailed, ProbeFailed, ProbeOK, ProbeFailed, ProbeFailed},
			[]Health{Suspect, Suspect, Healthy, Suspect, Suspect}, []bool{true, false, true, true, false}},
		{"down recovers on an answer", 1, []Event{ProbeFailed, ProbeOK}, []Health{Down, Healthy}, []bool{true, true}},
		{"threshold below one means one", 0, []Event{ProbeFailed}, []Health{Down}, []bool{true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := NewNode(tc.threshold)
			if n.State() != Unknown {
				t.Fatal(n.State())
			}
			for i, ev := range tc.events {
				got, changed := n.Observe(ev)
				if got != tc.want[i] || changed != tc.changed[i] {
					t.Fatalf("event %d: %s changed=%v, want %s changed=%v", i, got, changed, tc.want[i], tc.changed[i])
				}
			}
		})
	}
}

func TestShard_States(t *testing.T) {
	cases := []struct {
		in   ShardInput
		want ShardState
	}{
		{ShardInput{PrimaryHealth: Healthy, Standbys: 2, HealthyStandbys: 2}, ShardHealthy},
		{ShardInput{PrimaryHealth: Healthy, Standbys: 2, HealthyStandbys: 1}, ShardDegraded},
		{ShardInput{PrimaryHealth: Suspect, Standbys: 2, HealthyStandbys: 2}, ShardDegraded},
		{ShardInput{PrimaryHealth: Down, Standbys: 2, HealthyStandbys: 2}, ShardNoPrimary},
		{ShardInput{PrimaryHealth: "", Standbys: 2, HealthyStandbys: 2}, ShardNoPrimary},
		{ShardInput{PrimaryHealth: Down, Paused: true}, ShardPaused},
		{ShardInput{PrimaryHealth: Healthy, Paused: true, Standbys: 1, HealthyStandbys: 1}, ShardPaused},
		{ShardInput{PrimaryHealth: Down, Operation: "failover"}, ShardFailingOver},
		{ShardInput{PrimaryHealth: Healthy, Operation: "switchover"}, ShardSwitchingOver},
	}
	for _, tc := range cases {
		if got := Shard(tc.in); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.in, got, tc.want)
		}
	}
}
