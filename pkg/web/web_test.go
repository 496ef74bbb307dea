package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/hashicorp/raft"

	"github.com/clustermgr/clustermgr/internal/apitest"
	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/internal/uitest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/replica"
)

// startFleet starts a one-replica group in memory holding clusters×shards
// shards of three nodes each (nodes nobody runs: their health is unknown).
func startFleet(tb testing.TB, clusters, shards int) *replica.Replica {
	tb.Helper()
	t := meta.DefaultTiming()
	t.HeartbeatTimeout, t.ElectionTimeout, t.LeaderLeaseTimeout, t.CommitTimeout = 150*time.Millisecond, 150*time.Millisecond, 150*time.Millisecond, 5*time.Millisecond
	addr, trans := raft.NewInmemTransport("")
	cfg := replica.Config{
		NodeID: "m1", APIListen: "127.0.0.1:0", Peers: []meta.Peer{{ID: "m1", RaftAddr: string(addr)}},
		Timing: t, Transport: trans, InMemory: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		AdminTokenFile: authtest.TokenFile(tb), Keyring: authtest.Keyring(),
	}
	if _, bench := tb.(*testing.B); !bench {
		cfg.WrapAPI = apitest.Middleware(tb) // the page's every request and answer, held to the API document
	}
	r, err := replica.Start(cfg)
	if err != nil {
		tb.Fatalf("start replica: %v", err)
	}
	tb.Cleanup(func() { _ = r.Kill() })
	call := func(method, path string, body any, want int) []byte {
		tb.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			data, _ := json.Marshal(body)
			req, _ := http.NewRequest(method, r.URL+path, bytes.NewReader(data))
			req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == want {
					return out
				}
				err = fmt.Errorf("status %d: %s", resp.StatusCode, out)
			}
			if time.Now().After(deadline) {
				tb.Fatalf("%s %s: %v", method, path, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	port := 20000
	for c := range clusters {
		cl := fmt.Sprintf("c%02d", c)
		call("POST", "/v1/clusters", api.ClusterCreate{Name: cl}, http.StatusCreated)
		for s := range shards {
			var nodes []api.Node
			for n := range 3 {
				role := "standby"
				if n == 0 {
					role = "primary"
				}
				port++
				nodes = append(nodes, api.Node{Name: fmt.Sprintf("pg%d", n+1), Host: "10.0.0.1", Port: port, Role: role})
			}
			call("POST", "/v1/clusters/"+cl+"/shards", api.ShardCreate{Name: fmt.Sprintf("s%03d", s), Nodes: nodes}, http.StatusCreated)
		}
	}
	return r
}

// signIn opens the dashboard at base and signs in with token.
func signIn(ctx context.Context, base, token string) error {
	return chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#signout")),
	)
}

func rows(ctx context.Context) (int, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#shards tbody tr a').length`))
}

// TestDashboard_OverviewAndReadScope: sign-in refuses a bad token, the
// overview lists every shard, a read token sees no action, and both pages
// keep the accessibility rules.
func TestDashboard_OverviewAndReadScope(t *testing.T) {
	if testing.Short() {
		t.Skip("starts chromium")
	}
	ctx := uitest.Browser(t, 1280, 900)
	r := startFleet(t, 2, 3)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	err := chromedp.Do(ctx,
		chromedp.Navigate(r.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "cmt_notAValidTokenAtAllNotAValidTokenAtAll0000"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#signin-error")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#signin-error", "not valid")
	checkA11y(t, ctx, "sign-in page")

	// The rules catch what they are about: faint text, an input without a
	// label, a button without a name, a clickable div.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const d = document.createElement('div'); d.id = 'bad';
		d.innerHTML = '<p>faint</p><input id="nolabel"><button type="button"></button><div data-act="x">click</div>';
		d.firstChild.style.color = '#bbbbbb';
		document.querySelector('main').append(d); return true; })()`))
	if err != nil {
		t.Fatal(err)
	}
	problems, err := uitest.A11y(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"contrast", "no label", "no accessible name", "not focusable"} {
		if !strings.Contains(strings.Join(problems, "\n"), want) {
			t.Errorf("the accessibility check missed %q: %q", want, problems)
		}
	}

	if err := signIn(ctx, r.URL, authtest.AdminToken); err != nil {
		t.Fatal(err)
	}
	waitCond(t, ctx, "six shards listed", `document.querySelectorAll('#shards tbody tr a').length === 6`)
	checkA11y(t, ctx, "overview")

	// A read token: the shard page has no action.
	var tok api.NewToken
	body, _ := json.Marshal(api.TokenRequest{Name: "viewer", Scope: "read"})
	req, _ := http.NewRequest("POST", r.URL+"/v1/tokens", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token"))); err != nil {
		t.Fatal(err)
	}
	if err := signIn(ctx, r.URL, tok.Secret); err != nil {
		t.Fatalf("sign in with a read token: %v; page: %s", err, uitest.PageText(ctx))
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(r.URL+"/#/c/c00/s/s000"), chromedp.WaitVisible(chromedp.CSS("#nodes"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#who", "(read)")
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('button[data-act]').length`))
	if err != nil || n != 0 {
		t.Fatalf("a read token sees %d action buttons (%v)", n, err)
	}
	checkA11y(t, ctx, "shard page")
}

// TestDashboard_Overview1000Shards: the overview of 1,000 shards renders
// within a second in the browser (from navigation to the last row).
func TestDashboard_Overview1000Shards(t *testing.T) {
	if testing.Short() {
		t.Skip("starts chromium")
	}
	ctx := uitest.Browser(t, 1280, 900)
	r := startFleet(t, 10, 100)
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if err := signIn(ctx, r.URL, authtest.AdminToken); err != nil {
		t.Fatal(err)
	}
	waitCond(t, ctx, "1,000 shards listed", `document.querySelectorAll('#shards tbody tr a').length === 1000`)
	d := overviewLoad(t, ctx, r.URL)
	t.Logf("overview of 1,000 shards: %v from navigation to the last row", d)
	// The goal is 1 s (make bench-dashboard); a test under load allows 5.
	if d > 5*time.Second {
		t.Fatalf("overview of 1,000 shards took %v", d)
	}
}

// overviewLoad reloads the overview and returns the time until every row
// is in the page.
func overviewLoad(tb testing.TB, ctx context.Context, base string) time.Duration {
	tb.Helper()
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#/"), chromedp.Reload()); err != nil {
		tb.Fatal(err)
	}
	for {
		n, err := rows(ctx)
		if err == nil && n == 1000 {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			tb.Fatalf("overview: %d rows after 30 s (%v)", n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitCond(tb testing.TB, ctx context.Context, what, js string) {
	tb.Helper()
	uitest.Wait(tb, ctx, 30*time.Second, what, js, nil)
}

func waitText(tb testing.TB, ctx context.Context, sel, want string) {
	tb.Helper()
	waitCond(tb, ctx, fmt.Sprintf("%q in %s", want, sel), fmt.Sprintf(`((document.querySelector(%q) || {}).textContent || '').includes(%q)`, sel, want))
}

func checkA11y(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	uitest.CheckA11y(t, ctx, page)
}

// BenchmarkDashboardOverview: the overview of 1,000 shards (10 clusters of
// 100, three nodes each) in headless Chromium, from navigation to the last
// row in the page; ms/overview is the median of the iterations.
func BenchmarkDashboardOverview(b *testing.B) {
	ctx := uitest.Browser(b, 1280, 900)
	r := startFleet(b, 10, 100)
	if err := signIn(ctx, r.URL, authtest.AdminToken); err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for b.Loop() {
		ds = append(ds, overviewLoad(b, ctx, r.URL))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "ms/overview")
}
