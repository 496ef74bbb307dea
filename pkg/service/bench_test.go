package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/replica"
)

// BenchmarkGetCluster measures GET /v1/clusters/{c} on the leader of a
// 3-replica TCP group over loopback HTTP (keep-alive, one client), and
// reports p50 and p99 latency. The cluster has 8 shards of 3 nodes, and the
// state holds 100 such clusters.
func BenchmarkGetCluster(b *testing.B) {
	reps := startGroup(b, 3)
	leader, _ := leaderOf(b, reps)
	for c := 0; c < 100; c++ {
		mustStatus(b, do(b, "POST", leader.URL+"/v1/clusters", map[string]any{"name": fmt.Sprintf("c%d", c), "pg_user": "cm", "pg_password": "pw"}), http.StatusCreated)
		for s := 0; s < 8; s++ {
			port := 10000 + c*100 + s*3
			body := map[string]any{"name": fmt.Sprintf("s%d", s), "nodes": []map[string]any{
				{"name": "a", "host": "127.0.0.1", "port": port, "role": "primary"},
				{"name": "b", "host": "127.0.0.1", "port": port + 1, "role": "standby"},
				{"name": "c", "host": "127.0.0.1", "port": port + 2, "role": "standby"},
			}}
			mustStatus(b, do(b, "POST", leader.URL+fmt.Sprintf("/v1/clusters/c%d/shards", c), body), http.StatusCreated)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	url := leader.URL + "/v1/clusters/c42"
	get := func() time.Duration {
		start := time.Now()
		req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	reportLatency(b, 200, get)
}

// reportLatency calls get warmup times, then b.N times, and reports the
// p50 and p99 of what it returns.
func reportLatency(b *testing.B, warmup int, get func() time.Duration) {
	for range warmup { // connections and caches
		get()
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lat = append(lat, get())
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkMetrics measures GET /metrics of a replica whose state holds
// 1,000 shards of 3 nodes (every node in the answer, decorated from the
// replica's views as the API shows it), over loopback HTTP, and reports
// p50 and p99 latency and the answer's size. The nodes are never probed
// (their health is unknown), so the decoration finds no sample.
func BenchmarkMetrics(b *testing.B) {
	addr, trans := raft.NewInmemTransport("")
	r, err := replica.Start(replica.Config{
		NodeID: "m1", APIListen: "127.0.0.1:0", Peers: []meta.Peer{{ID: "m1", RaftAddr: string(addr)}},
		Timing: fastTiming(), Transport: trans, InMemory: true, Logger: quietLogger(), AdminTokenFile: authtest.TokenFile(b), Keyring: authtest.Keyring(),
		HA: &ha.Config{ProbeInterval: time.Minute},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Kill() })
	waitFor(b, 5*time.Second, "replica to lead", func() bool { return r.Store.IsLeader() })
	waitBootstrapped(b, r)
	ctx := context.Background()
	for c := 0; c < 10; c++ {
		if err := r.Store.Apply(ctx, &meta.CreateCluster{Name: fmt.Sprintf("c%d", c)}); err != nil {
			b.Fatal(err)
		}
		for s := 0; s < 100; s++ {
			port := 10000 + (c*100+s)*3
			var nodes []*meta.Node
			for i, n := range []string{"a", "b", "c"} {
				role := meta.RoleStandby
				if i == 0 {
					role = meta.RolePrimary
				}
				nodes = append(nodes, &meta.Node{Name: n, Host: "127.0.0.1", Port: port + i, Role: role})
			}
			if err := r.Store.Apply(ctx, &meta.CreateShard{Cluster: fmt.Sprintf("c%d", c), Name: fmt.Sprintf("s%d", s), Nodes: nodes}); err != nil {
				b.Fatal(err)
			}
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	size := 0
	get := func() time.Duration {
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, "GET", r.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		size = int(n)
		return time.Since(start)
	}
	reportLatency(b, 5, get)
	b.ReportMetric(float64(size)/1024, "KiB")
}
