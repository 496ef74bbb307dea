package detector_test

import (
	"context"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/detector"
)

func target(s *pgtest.Server) detector.Target {
	return detector.Target{Key: "c/s/" + s.Name, Host: s.Host, Port: s.Port, User: "postgres"}
}

func TestDetector_ProbesCollectKillAndFreeze(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	s := e.StartStandby("pg2", p)
	d := detector.New(time.Second, time.Now, "")
	defer d.Close()
	ctx := context.Background()

	var pr detector.Result
	deadline := time.Now().Add(10 * time.Second)
	for {
		pr = d.Probe(ctx, target(p))
		if pr.OK && len(pr.Sample.Replicas) == 1 && pr.Sample.Replicas[0].State == "streaming" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("primary probe %+v", pr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pr.Sample.InRecovery || pr.Sample.Timeline != 1 || pr.Sample.CurrentLSN == 0 || pr.Sample.Replicas[0].AppName != "pg2" || pr.Sample.MaxConnections != 40 {
		t.Fatalf("primary sample %+v", pr.Sample)
	}
	sr := d.Probe(ctx, target(s))
	if !sr.OK || !sr.Sample.InRecovery || sr.Sample.Receiver == nil || sr.Sample.Receiver.Status != "streaming" ||
		sr.Sample.Receiver.SenderPort != p.Port || sr.Sample.ReceiveLSN == 0 || sr.Sample.Timeline != 1 {
		t.Fatalf("standby sample %+v receiver %+v", sr.Sample, sr.Sample.Receiver)
	}

	// A frozen server times out; that is not a refusal.
	p.Freeze()
	start := time.Now()
	fr := d.Probe(ctx, target(p))
	if fr.OK || fr.Refused || time.Since(start) > 5*time.Second {
		t.Fatalf("frozen probe %+v after %v", fr, time.Since(start))
	}
	p.Thaw()
	if r := d.Probe(ctx, target(p)); !r.OK {
		t.Fatalf("thawed probe %+v", r)
	}
	// A killed server refuses connections.
	p.KillPostmaster()
	deadline = time.Now().Add(10 * time.Second)
	for {
		r := d.Probe(ctx, target(p))
		if r.Refused {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("killed probe %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A blocked key fails without touching the network.
	d.SetBlock(func(key string) bool { return key == "c/s/pg2" })
	if r := d.Probe(ctx, target(s)); r.OK || r.Refused {
		t.Fatalf("blocked probe %+v", r)
	}
}
