package ha_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
)

// newProvisionedShard provisions shard app/s1 (pg1 primary, pg2) through
// the agent, under its data root, and creates table t.
func newProvisionedShard(t *testing.T) *env {
	t.Helper()
	e := newGroup(t, ha.Config{})
	e.mustDo("POST", "/v1/clusters", map[string]any{"name": "app", "pg_user": "postgres", "pg_password": provisionPassword}, http.StatusCreated, nil)
	nodes := e.provisionNodes("pg1", "pg2")
	var ref api.OperationRef
	e.mustDo("POST", "/v1/clusters/app/shards", map[string]any{"name": "s1", "provision": true, "nodes": nodes}, http.StatusAccepted, &ref)
	if op := e.waitOperation(ref.ID, 3*time.Minute); op.State != "succeeded" {
		e.dump()
		t.Fatalf("provisioning %+v", op)
	}
	e.adopt(nodes)
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	return e
}

// newBackedUpShard provisions shard app/s1 (pg1 primary, pg2), creates
// table t and takes a verified backup.
func newBackedUpShard(t *testing.T) (*env, string) {
	t.Helper()
	e := newProvisionedShard(t)
	var ref api.OperationRef
	e.waitShardState("healthy", 30*time.Second)
	e.mustDo("POST", "/v1/clusters/app/shards/s1/backups", nil, http.StatusAccepted, &ref)
	if op := e.waitOperation(ref.ID, 2*time.Minute); op.State != "succeeded" {
		e.dump()
		t.Fatalf("backup %+v", op)
	}
	return e, ref.ID
}

// archiveCurrentWAL switches p to a new WAL file and waits until the one
// it completed is archived. (Waiting for the file before the current
// position instead can miss: any WAL written meanwhile, a standby
// snapshot record or a checkpoint, moves the position into the new file.)
func archiveCurrentWAL(e *env, p *pgtest.Server) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := p.Connect(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var seg string
	if err := conn.QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&seg); err != nil {
		e.t.Fatal(err)
	}
	e.waitFor(30*time.Second, "WAL file "+seg+" archived", func() bool {
		n, err := p.QueryInt("SELECT count(*) FROM pg_stat_archiver WHERE last_archived_wal >= $1", seg)
		return err == nil && n == 1
	})
}

// TestBackup_RestoreToATimeBetweenTwoWrites takes a backup, writes two
// batches of rows a second apart, and restores to a time between them from
// the backup and the WAL archive: exactly the first batch is there.
func TestBackup_RestoreToATimeBetweenTwoWrites(t *testing.T) {
	e, backupID := newBackedUpShard(t)
	var ref api.OperationRef
	p := e.nodes["pg1"]

	p.Exec("INSERT INTO t SELECT generate_series(1, 10)")
	time.Sleep(1100 * time.Millisecond) // the two batches must be told apart by time
	target := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	p.Exec("INSERT INTO t SELECT generate_series(11, 20)")
	archiveCurrentWAL(e, p)

	// Bad input first: nothing is built.
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"backup": backupID, "target_time": "yesterday", "node": map[string]any{"name": "r1", "host": "127.0.0.1", "port": 1, "agent": e.agent, "data_dir": "/x"}}, "target_time"},
		{map[string]any{"backup": backupID, "node": map[string]any{"name": "r1", "host": "127.0.0.1", "port": 1, "agent": "http://127.0.0.1:1", "data_dir": "/x"}}, "node.agent"},
	} {
		status, body := e.do("POST", "/v1/clusters/app/shards/s1/restore", tc.body, nil)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"field":"`+tc.field+`"`) {
			t.Errorf("restore with bad %s: %d %s", tc.field, status, body)
		}
	}
	if status, _ := e.do("POST", "/v1/clusters/app/shards/s1/restore", map[string]any{"backup": "nope", "node": map[string]any{"name": "r1"}}, nil); status != http.StatusNotFound {
		t.Errorf("restore of an unknown backup: %d", status)
	}

	port := pgtest.FreePort(t)
	dir := filepath.Join(e.root, "restored", "data")

	// A target past the end of the archive: PostgreSQL's own error comes
	// back at once, and the half-built server is removed.
	e.mustDo("POST", "/v1/clusters/app/shards/s1/restore", map[string]any{"backup": backupID, "target_time": time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano),
		"as_new_shard": "restored", "node": map[string]any{"name": "r1", "host": "127.0.0.1", "port": port, "agent": e.agent, "data_dir": dir}},
		http.StatusAccepted, &ref)
	if op := e.waitOperation(ref.ID, time.Minute); op.State != "failed" || !strings.Contains(op.Error, "recovery ended before configured recovery target was reached") {
		e.dump()
		t.Fatalf("restore past the archive %+v", op)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the failed restore left %s behind: %v", dir, err)
	}

	e.mustDo("POST", "/v1/clusters/app/shards/s1/restore", map[string]any{"backup": backupID, "target_time": target.Format(time.RFC3339Nano),
		"as_new_shard": "restored", "node": map[string]any{"name": "r1", "host": "127.0.0.1", "port": port, "agent": e.agent, "data_dir": dir}},
		http.StatusAccepted, &ref)
	op := e.waitOperation(ref.ID, 3*time.Minute)
	if op.State != "succeeded" || !strings.Contains(op.Steps[0].Detail, "reached LSN") {
		e.dump()
		t.Fatalf("restore %+v", op)
	}
	r := e.pg.Adopt("r1", "127.0.0.1", port, dir)
	r.Password = provisionPassword
	n, err := r.QueryInt("SELECT count(*) FROM t")
	if err != nil || n != 10 {
		t.Fatalf("restored rows: %d %v (want exactly the 10 written before %s)", n, err, target)
	}
	if rec, err := r.InRecovery(); err != nil || rec {
		t.Fatalf("restored server in recovery: %v %v", rec, err)
	}
	var sh api.Shard
	e.mustDo("GET", "/v1/clusters/app/shards/restored", nil, http.StatusOK, &sh)
	if sh.Primary != "r1" {
		t.Fatalf("restored shard %+v", sh)
	}
	t.Logf("restore: %s", op.Steps[0].Detail)
}

// TestBackup_ScheduleAndRetention lets the leader take backups on a
// schedule and keep only the newest two.
func TestBackup_ScheduleAndRetention(t *testing.T) {
	e := newGroup(t, ha.Config{})
	e.mustDo("POST", "/v1/clusters", map[string]any{"name": "app", "pg_user": "postgres", "pg_password": provisionPassword}, http.StatusCreated, nil)
	nodes := e.provisionNodes("pg1", "pg2")
	var ref api.OperationRef
	e.mustDo("POST", "/v1/clusters/app/shards", map[string]any{"name": "s1", "provision": true, "nodes": nodes}, http.StatusAccepted, &ref)
	if op := e.waitOperation(ref.ID, 3*time.Minute); op.State != "succeeded" {
		t.Fatalf("provisioning %+v", op)
	}
	e.adopt(nodes)
	status, body := e.do("PATCH", "/v1/clusters/app/shards/s1", map[string]any{"backup_schedule": "every day at noon"}, nil)
	if status != http.StatusBadRequest || !strings.Contains(string(body), `"field":"backup_schedule"`) {
		t.Fatalf("invalid cron expression: %d %s", status, body)
	}
	e.mustDo("PATCH", "/v1/clusters/app/shards/s1", map[string]any{"backup_schedule": "@every 2s", "backup_retention": 2}, http.StatusOK, nil)
	e.waitFor(90*time.Second, "a third scheduled backup and the oldest removed", func() bool {
		return len(e.events("removed")) >= 1
	})
	var list api.BackupList
	e.mustDo("GET", "/v1/clusters/app/shards/s1/backups", nil, http.StatusOK, &list)
	if len(list.Backups) > 2 || len(list.Backups) == 0 {
		t.Fatalf("backups kept: %+v", list.Backups)
	}
	for _, b := range list.Backups {
		if !b.Verified {
			t.Fatalf("backup %+v", b)
		}
	}
	e.mustDo("PATCH", "/v1/clusters/app/shards/s1", map[string]any{"backup_schedule": ""}, http.StatusOK, nil)
}

// TestBackup_RestoreToATimeAfterThreePromotions takes a backup, then
// switches over three times with writes between, and restores to a time
// after the third promotion: the restore follows the timelines through the
// archive, which every new primary archived into (again, for segments the
// old primary had archived already).
func TestBackup_RestoreToATimeAfterThreePromotions(t *testing.T) {
	e, backupID := newBackedUpShard(t)
	var ref api.OperationRef

	insert := func(from int) {
		p := e.nodes[e.primary()]
		p.Exec("INSERT INTO t SELECT generate_series($1::int, $1::int + 9)", from)
	}
	insert(1)
	for i := 1; i <= 3; i++ {
		e.waitShardState("healthy", 60*time.Second)
		if op := e.waitOperation(e.switchover("").ID, time.Minute); op.State != "succeeded" {
			e.dump()
			t.Fatalf("switchover %d: %+v", i, op)
		}
		e.waitFor(10*time.Second, "the new primary", func() bool { return e.primary() != "" })
		insert(1 + 10*i)
	}
	if sh := e.shard(); sh.Epoch != 4 {
		t.Fatalf("epoch %d after three switchovers", sh.Epoch)
	}
	time.Sleep(1100 * time.Millisecond) // the target must fall between the batches
	target := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	insert(41)
	p := e.nodes[e.primary()]
	archiveCurrentWAL(e, p)
	for _, n := range e.shard().Nodes {
		if n.Status != nil && n.Status.ArchiveError != "" {
			t.Fatalf("%s: %s", n.Name, n.Status.ArchiveError)
		}
	}

	// A restore is refused while an operation runs on the shard: the
	// old primary of the last switchover may still be rejoining (on a
	// loaded machine it had not streamed in time and was rewound).
	e.waitFor(60*time.Second, "the shard healthy with no operation running", func() bool {
		sh := e.shard()
		return sh.State == "healthy" && sh.Operation == ""
	})
	port := pgtest.FreePort(t)
	dir := filepath.Join(e.root, "restored", "data")
	e.mustDo("POST", "/v1/clusters/app/shards/s1/restore", map[string]any{"backup": backupID, "target_time": target.Format(time.RFC3339Nano),
		"as_new_shard": "restored", "node": map[string]any{"name": "r1", "host": "127.0.0.1", "port": port, "agent": e.agent, "data_dir": dir}},
		http.StatusAccepted, &ref)
	op := e.waitOperation(ref.ID, 3*time.Minute)
	if op.State != "succeeded" {
		e.dump()
		t.Fatalf("restore %+v", op)
	}
	r := e.pg.Adopt("r1", "127.0.0.1", port, dir)
	r.Password = provisionPassword
	if n, err := r.QueryInt("SELECT count(*) FROM t"); err != nil || n != 40 {
		t.Fatalf("restored rows: %d %v (want the 40 written before %s, across three promotions)", n, err, target)
	}
	t.Logf("restore: %s", op.Steps[0].Detail)
}
