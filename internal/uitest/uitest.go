// Package uitest drives the dashboard in a real headless Chromium
// (Debian's chromium package) through chromedp for the tests and
// benchmarks, and checks pages against the dashboard's accessibility
// rules (see a11yScript).
package uitest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser starts a headless Chromium of width×height pixels and returns
// its context; the browser is stopped and waited for when the test ends.
// The test is skipped when no chromium binary is installed (.ci/run
// installs it), and in short mode.
func Browser(tb testing.TB, width, height int) context.Context {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts Chromium: not a unit test")
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		tb.Skip("chromium is not installed (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(width, height),
		chromedp.Flag("ignore-certificate-errors", true), // the test group's own CA
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(tb.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(tb.Logf))
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		tb.Fatalf("start chromium: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		cancelAlloc() // kills the browser and waits for it
	})
	return ctx
}

// Screenshot saves the page as name (PNG) in dir and returns its path.
func Screenshot(ctx context.Context, dir, name string) (string, error) {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", fmt.Errorf("screenshot %s: %w", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		return "", err
	}
	return p, nil
}

// a11yScript checks the page against the accessibility rules every page
// of the dashboard is held to (a subset of WCAG 2.1 AA that axe-core also checks):
//
//   - the document has a lang and a title, and one h1;
//   - every button, link, input and select has an accessible name (its
//     text, aria-label, aria-labelledby, or a label for it);
//   - no element has a positive tabindex, and nothing is clickable that
//     is not a button, a link or a form control (keyboard reachable);
//   - every visible text has a contrast ratio of at least 4.5:1 with
//     the background behind it (3:1 from 18.66 px bold or 24 px);
//   - tables have header cells with a scope;
//   - an svg chart has role="img" and a label.
const a11yScript = `(() => {
  const out = [];
  const lum = (c) => { const m = c.match(/[\d.]+/g); if (!m) return null; const a = m.length > 3 ? +m[3] : 1;
    return { rgb: m.slice(0, 3).map(Number), a }; };
  const rel = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bgOf = (el) => { for (let e = el; e; e = e.parentElement) { const c = lum(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c.rgb; } return [255, 255, 255]; };
  const name = (el) => {
    if (el.getAttribute('aria-label')) return el.getAttribute('aria-label');
    const lb = el.getAttribute('aria-labelledby'); if (lb) return lb.split(' ').map((i) => (document.getElementById(i) || {}).textContent || '').join(' ');
    if (el.id) { const l = document.querySelector('label[for="' + CSS.escape(el.id) + '"]'); if (l) return l.textContent; }
    if (el.closest('label')) return el.closest('label').textContent;
    return el.textContent || el.value || el.getAttribute('title') || '';
  };
  const visible = (el) => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el); return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  if (!document.documentElement.lang) out.push('html has no lang');
  if (!document.title) out.push('no title');
  if (document.querySelectorAll('h1').length !== 1) out.push(document.querySelectorAll('h1').length + ' h1 elements');
  for (const el of document.querySelectorAll('button, a[href], input, select, textarea')) {
    if (!visible(el)) continue;
    if (!name(el).trim()) out.push('no accessible name: ' + el.outerHTML.slice(0, 120));
    if ((el.tagName === 'INPUT' || el.tagName === 'SELECT') && !el.getAttribute('aria-label') && !(el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]')) && !el.closest('label'))
      out.push('no label: ' + el.outerHTML.slice(0, 120));
  }
  for (const el of document.querySelectorAll('[tabindex]')) if (+el.getAttribute('tabindex') > 0) out.push('positive tabindex: ' + el.outerHTML.slice(0, 120));
  for (const el of document.querySelectorAll('[onclick], [data-act]')) if (!['BUTTON', 'A', 'INPUT', 'SELECT'].includes(el.tagName)) out.push('clickable but not focusable: ' + el.outerHTML.slice(0, 120));
  for (const th of document.querySelectorAll('thead th')) if (!th.getAttribute('scope')) out.push('th without scope: ' + th.textContent);
  for (const svg of document.querySelectorAll('svg')) if (svg.getAttribute('role') !== 'img' || !svg.getAttribute('aria-label')) out.push('svg without role=img and a label');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || !el || seen.has(el) || !visible(el) || el.closest('svg, dialog:not([open])')) continue;
    seen.add(el);
    const s = getComputedStyle(el), fg = lum(s.color);
    if (!fg) continue;
    const a = rel(fg.rgb), b = rel(bgOf(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const px = parseFloat(s.fontSize), bold = +s.fontWeight >= 700;
    const need = (px >= 24 || (bold && px >= 18.66)) ? 3 : 4.5;
    if (ratio < need) out.push('contrast ' + ratio.toFixed(2) + ' < ' + need + ': "' + walker.currentNode.textContent.trim().slice(0, 40) + '" (' + s.color + ')');
  }
  return JSON.stringify(out);
})()`

// A11y checks the page in ctx against those rules and returns what breaks
// them.
func A11y(ctx context.Context) ([]string, error) {
	res, err := chromedp.Run(ctx, chromedp.Evaluate[string](a11yScript))
	if err != nil {
		return nil, fmt.Errorf("accessibility check: %w", err)
	}
	var out []string
	if err := json.Unmarshal([]byte(res), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Wait polls the JavaScript condition js in the page until it is true, for
// up to d; on time-out the test fails with what, the last error and the
// page's text. onFail (may be nil) runs first, to log more.
func Wait(tb testing.TB, ctx context.Context, d time.Duration, what, js string, onFail func()) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			if onFail != nil {
				onFail()
			}
			tb.Fatalf("timed out after %v waiting for %s (%v); page: %s", d, what, err, PageText(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PageText is the page's visible text on one line, for failure messages.
func PageText(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return fmt.Sprint("(no text: ", err, ")")
	}
	return strings.Join(strings.Fields(s), " ")
}

// CheckA11y fails the test for every break of the rules on the page.
func CheckA11y(tb testing.TB, ctx context.Context, page string) {
	tb.Helper()
	problems, err := A11y(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range problems {
		tb.Errorf("%s: %s", page, p)
	}
}
