package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"
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
	for i := 0; i < 200; i++ { // warm up connections and caches
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
