package ha_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/internal/uitest"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/replica"
)

// TestDashboard_SwitchoverThroughAFollower drives the dashboard in headless
// Chromium against a follower of a real group with a real shard: sign in,
// see the shard, switch over with the keyboard alone, see the new primary
// and the event; then see the banner when the follower loses its leader.
// Screenshots (desktop and a 390 px wide phone) go to the test's artifact
// directory, or to $DASHBOARD_SCREENSHOTS (make screenshots).
func TestDashboard_SwitchoverThroughAFollower(t *testing.T) {
	bctx := uitest.Browser(t, 1280, 1000)
	e := newEnv(t, ha.Config{})
	e.waitStandbyOf("pg2", "pg1", 30*time.Second)
	e.waitStandbyOf("pg3", "pg1", 30*time.Second)
	leader := e.leader()
	var follower *replica.Replica
	for _, r := range e.live() {
		if r != leader {
			follower = r
			break
		}
	}
	shots := os.Getenv("DASHBOARD_SCREENSHOTS")
	if shots == "" {
		shots = t.ArtifactDir()
	}
	shot := func(name string) {
		t.Helper()
		p, err := uitest.Screenshot(bctx, shots, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", p)
	}
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	wait := func(what, js string) {
		t.Helper()
		uitest.Wait(t, ctx, 60*time.Second, what, js, e.dump)
	}
	a11y := func(page string) {
		t.Helper()
		uitest.CheckA11y(t, ctx, page)
	}

	// Sign in on the follower and find the shard on the overview.
	err := chromedp.Do(ctx,
		chromedp.Navigate(follower.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), authtest.AdminToken+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#shards")),
	)
	if err != nil {
		t.Fatalf("sign in: %v; page: %s", err, uitest.PageText(ctx))
	}
	wait("the shard healthy on the overview", `[...document.querySelectorAll('#shards tbody tr')].some((tr) => tr.textContent.includes('app / s1') && tr.textContent.includes('healthy') && tr.textContent.includes('pg1'))`)
	wait("three members", `document.querySelectorAll('#members tbody tr').length === 3`)
	a11y("overview")
	shot("overview.png")

	// The shard page: nodes, their LSNs, the actions.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#shards a[href="#/c/app/s/s1"]`)), chromedp.WaitVisible(chromedp.CSS("#nodes"))); err != nil {
		t.Fatal(err)
	}
	wait("pg1 primary and both standbys streaming", `document.querySelector('#primary').textContent === 'pg1' && document.querySelectorAll('#nodes tbody tr').length === 3 && [...document.querySelectorAll('#nodes tbody tr')].filter((tr) => tr.textContent.includes('streaming from pg1')).length === 2`)
	a11y("shard page")
	shot("shard.png")

	// Switch over to pg2 with the keyboard: pick the target, Tab to the
	// button, Enter, and Enter on the confirmation.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#target"), "pg2"), chromedp.Focus(chromedp.CSS("#target"))); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
		if err != nil {
			t.Fatal(err)
		}
		if id == "switchover" {
			break
		}
		if i > 5 {
			t.Fatalf("Tab from the target did not reach the switchover button (at %q)", id)
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
	}
	outline, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.activeElement).outlineStyle`))
	if err != nil || outline == "none" {
		t.Errorf("the focused button shows no outline (%q, %v)", outline, err)
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	wait("the confirmation", `document.querySelector('#confirm').open && document.activeElement.id === 'confirm-yes' && document.querySelector('#confirm-body').textContent.includes('pg2')`)
	shot("switchover-confirm.png")
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	wait("the operation started", `document.querySelector('#status').textContent.includes('switchover started')`)
	wait("pg2 the primary", `document.querySelector('#primary').textContent === 'pg2'`)
	wait("the switchover's event", `[...document.querySelectorAll('#events li')].some((li) => /switchover/i.test(li.textContent) && li.textContent.includes('pg2'))`)
	wait("the operation succeeded", `document.querySelector('#operation-summary').textContent.includes('succeeded')`)
	wait("both standbys streaming from pg2", `[...document.querySelectorAll('#nodes tbody tr')].filter((tr) => tr.textContent.includes('streaming from pg2')).length === 2`)
	a11y("shard page after the switchover")
	shot("switchover-done.png")
	if p := e.primary(); p != "pg2" {
		t.Fatalf("the API says the primary is %s", p)
	}

	// The same pages on a phone.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#nodes"))); err != nil {
		t.Fatal(err)
	}
	wait("the shard page on a phone", `document.querySelector('#primary').textContent === 'pg2' && document.documentElement.scrollWidth <= 400`)
	shot("shard-phone.png")
	if err := chromedp.Do(ctx, chromedp.Navigate(follower.URL+"/#/"), chromedp.WaitVisible(chromedp.CSS("#shards"))); err != nil {
		t.Fatal(err)
	}
	wait("the overview on a phone", `document.querySelectorAll('#shards tbody tr').length === 1 && document.documentElement.scrollWidth <= 400`)
	shot("overview-phone.png")

	// The follower loses its leader: the other two managers stop.
	for i, r := range e.reps {
		if r != nil && r != follower {
			_ = r.Kill()
			e.reps[i] = nil
		}
	}
	wait("the no-leader banner", `!document.querySelector('#banner').hidden && document.querySelector('#banner').textContent.includes('no leader')`)
	shot("no-leader-phone.png")
}
