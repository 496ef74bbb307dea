package decision

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCheckDetached(t *testing.T) {
	const host, port = "10.0.0.1", 5432
	gone := func(n string) StandbyLink { return StandbyLink{Node: n, InRecovery: true} } // no WAL receiver
	streaming := func(n string, since time.Duration) StandbyLink {
		return StandbyLink{Node: n, InRecovery: true, Receiver: "streaming", SenderHost: host, SenderPort: port, SinceMessage: since}
	}
	unseen := func(n string) StandbyLink { return StandbyLink{Node: n, Err: "connect: i/o timeout"} }
	others := []string{"10.0.0.2:5432", "10.0.0.3:5432", "10.0.0.4:5432", "10.0.0.5:5432"}
	for _, c := range []struct {
		name  string
		links []StandbyLink
		want  Detachment
	}{{
		name:  "host lost: both standbys lost their receiver",
		links: []StandbyLink{gone("pg2"), gone("pg3")},
		want: Detachment{OK: true, Needed: 2, Detached: []string{"pg2", "pg3"},
			Reason: "2 of 2 standbys detached from the old primary at 10.0.0.1:5432 [pg2, pg3]: with the 2 needed it has no majority left and has fenced itself"},
	}, {
		name:  "frozen host: receivers still say streaming but got nothing for 3 s",
		links: []StandbyLink{streaming("pg2", 3*time.Second), streaming("pg3", 3*time.Second)},
		want: Detachment{OK: true, Needed: 2, Detached: []string{"pg2", "pg3"},
			Reason: "2 of 2 standbys detached from the old primary at 10.0.0.1:5432 [pg2, pg3]: with the 2 needed it has no majority left and has fenced itself"},
	}, {
		name:  "partition: the old primary kept pg2, the managers see only pg3",
		links: []StandbyLink{unseen("pg2"), gone("pg3")},
		want: Detachment{Needed: 2, Detached: []string{"pg3"}, Unseen: []string{"pg2"},
			Reason: "only 1 of 2 standbys are seen detached from the old primary at 10.0.0.1:5432, 2 needed; not reachable (may be on its side of a partition): [pg2] (pg2: connect: i/o timeout): it may still serve a majority of the shard, so no standby is promoted"},
	}, {
		name:  "a standby still receives the old primary's WAL",
		links: []StandbyLink{streaming("pg2", 100*time.Millisecond), gone("pg3")},
		want: Detachment{Needed: 2, Detached: []string{"pg3"}, Receiving: []string{"pg2"},
			Reason: "only 1 of 2 standbys are seen detached from the old primary at 10.0.0.1:5432, 2 needed; still receiving its WAL: [pg2]: it may still serve a majority of the shard, so no standby is promoted"},
	}, {
		name: "streaming from elsewhere, or already promoted, is detached",
		links: []StandbyLink{{Node: "pg2", InRecovery: true, Receiver: "streaming", SenderHost: "10.0.0.3", SenderPort: port},
			{Node: "pg3", InRecovery: false}},
		want: Detachment{OK: true, Needed: 2, Detached: []string{"pg2", "pg3"},
			Reason: "2 of 2 standbys detached from the old primary at 10.0.0.1:5432 [pg2, pg3]: with the 2 needed it has no majority left and has fenced itself"},
	}, {
		name:  "two nodes: the one standby is enough",
		links: []StandbyLink{gone("pg2")},
		want: Detachment{OK: true, Needed: 1, Detached: []string{"pg2"},
			Reason: "1 of 1 standbys detached from the old primary at 10.0.0.1:5432 [pg2]: with the 1 needed it has no majority left and has fenced itself"},
	}, {
		name:  "five nodes: three of four detached is enough, one unseen",
		links: []StandbyLink{gone("pg2"), gone("pg3"), streaming("pg4", 2*time.Second), unseen("pg5")},
		want: Detachment{OK: true, Needed: 3, Detached: []string{"pg2", "pg3", "pg4"}, Unseen: []string{"pg5"},
			Reason: "3 of 4 standbys detached from the old primary at 10.0.0.1:5432 [pg2, pg3, pg4]: with the 3 needed it has no majority left and has fenced itself"},
	}, {
		name:  "five nodes: two detached are not",
		links: []StandbyLink{gone("pg2"), gone("pg3"), unseen("pg4"), unseen("pg5")},
		want: Detachment{Needed: 3, Detached: []string{"pg2", "pg3"}, Unseen: []string{"pg4", "pg5"},
			Reason: "only 2 of 4 standbys are seen detached from the old primary at 10.0.0.1:5432, 3 needed; not reachable (may be on its side of a partition): [pg4, pg5] (pg4: connect: i/o timeout; pg5: connect: i/o timeout): it may still serve a majority of the shard, so no standby is promoted"},
	}, {
		name: "a receiver starting or restarting is detached now; one whose details cannot be read is unseen",
		links: []StandbyLink{{Node: "pg2", InRecovery: true, Receiver: "starting"},
			{Node: "pg3", Err: "cannot read its WAL receiver (pg_stat_wal_receiver needs pg_read_all_stats)"}},
		want: Detachment{Needed: 2, Detached: []string{"pg2"}, Unseen: []string{"pg3"},
			Reason: "only 1 of 2 standbys are seen detached from the old primary at 10.0.0.1:5432, 2 needed; not reachable (may be on its side of a partition): [pg3] (pg3: cannot read its WAL receiver (pg_stat_wal_receiver needs pg_read_all_stats)): it may still serve a majority of the shard, so no standby is promoted"},
	}, {
		name: "streaming from an address the shard does not know (the old primary by another name, another port) is receiving",
		links: []StandbyLink{{Node: "pg2", InRecovery: true, Receiver: "streaming", SenderHost: "db1.example", SenderPort: port},
			{Node: "pg3", InRecovery: true, Receiver: "streaming", SenderHost: host, SenderPort: 5433}},
		want: Detachment{Needed: 2, Receiving: []string{"pg2", "pg3"},
			Reason: "only 0 of 2 standbys are seen detached from the old primary at 10.0.0.1:5432, 2 needed; still receiving its WAL: [pg2, pg3]: it may still serve a majority of the shard, so no standby is promoted"},
	}, {
		name:  "receiving just under DetachAge is receiving",
		links: []StandbyLink{streaming("pg2", DetachAge-time.Millisecond), streaming("pg3", DetachAge)},
		want: Detachment{Needed: 2, Detached: []string{"pg3"}, Receiving: []string{"pg2"},
			Reason: "only 1 of 2 standbys are seen detached from the old primary at 10.0.0.1:5432, 2 needed; still receiving its WAL: [pg2]: it may still serve a majority of the shard, so no standby is promoted"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			if d := cmp.Diff(c.want, CheckDetached(host, port, others, c.links)); d != "" {
				t.Errorf("CheckDetached (-want +got):\n%s", d)
			}
		})
	}
}
