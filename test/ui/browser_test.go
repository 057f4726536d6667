// Package ui tests the web UI in headless Chromium (Debian's chromium),
// driven from Go with chromedp, against the real binary: a dev cluster
// for the pages and a job's life, a server with 10,000 nodes for the
// overview's first render, and a peer for the Peers page. Each page's
// screenshot is saved in the test's artifact directory (go test
// -artifacts keeps it) or in $GANTRY_UI_SCREENSHOTS.
package ui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/internal/testutil"
)

var gantryBin string

func TestMain(m *testing.M) {
	code := testutil.MainWithGantry(m, "test/ui", &gantryBin)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// chromiumPath finds the browser, or skips the test saying what is
// missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on PATH (install Debian's chromium package: apt-get install chromium); skipping the browser tests")
	return ""
}

// browser is one headless Chromium tab for a test.
type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string // screenshots
	base string // http://host:port
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests may run as root
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	dir := os.Getenv("GANTRY_UI_SCREENSHOTS")
	if dir == "" {
		dir = t.ArtifactDir()
	} else {
		dir = filepath.Join(dir, t.Name())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, ctx: ctx, dir: dir, base: base}
}

// do runs steps, failing the test on an error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// wait polls a JavaScript condition (generously: the machine is shared;
// nothing asserts how fast). It evaluates the condition itself rather than
// with chromedp.Poll, whose task does not survive the page's hash
// navigations.
func (b *browser) wait(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	expr := fmt.Sprintf("(() => { try { return !!(%s); } catch (e) { return false; } })()", cond)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
			text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string]("location.hash + '\\n' + document.getElementById('main').innerText"))
			b.t.Fatalf("waiting for %s (%v)\npage:\n%.3000s", what, err, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// open goes to a page of the app and waits for its heading.
func (b *browser) open(hash, heading string) {
	b.t.Helper()
	b.do("open "+hash, chromedp.Navigate(b.base+"/ui/"+hash))
	b.wait(hash+" to render", fmt.Sprintf(`(document.querySelector('main h1')?.textContent || '').includes(%q)`, heading))
}

// shot saves a full-page screenshot as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

// a11yProblems lists form controls without a label, and controls that
// are not keyboard-focusable.
const a11yProblems = `(() => {
  const out = [];
  const shown = (el) => !el.closest('[hidden]') && el.getClientRects().length > 0;
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (!shown(el) || el.type === 'hidden') continue;
    if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby')) out.push('no label: ' + el.outerHTML.slice(0, 100));
  }
  for (const el of document.querySelectorAll('a[href], button, input, select, textarea, summary, canvas[tabindex], .vlist')) {
    if (!shown(el) || el.closest('.vlist .spacer')) continue; // list rows are reached through their list
    if (el.tabIndex < 0) out.push('not focusable: ' + el.outerHTML.slice(0, 100));
  }
  return out;
})()`

// checkKeyboard checks labels and focusability, then presses Tab through
// the page and checks that every control outside a list's rows got the
// focus. Controls are compared by a key (tag, href, id, name, label or
// text), not as DOM nodes: a live page may redraw a table between two Tabs,
// and a redrawn link is the same control to a keyboard user.
func (b *browser) checkKeyboard(page string) {
	b.t.Helper()
	if p := eval[[]string](b, a11yProblems); len(p) > 0 {
		b.t.Errorf("%s: %s", page, strings.Join(p, "\n"))
	}
	eval[chromedp.Void](b, tabKeyJS+`window.__tabSeen = new Set(); document.activeElement?.blur(); true`)
	want := eval[int](b, tabControlsJS+`.length`)
	for range want + 5 {
		b.do("tab", chromedp.KeyEvent("\t"))
		eval[chromedp.Void](b, `document.activeElement && window.__tabSeen.add(window.__tabKey(document.activeElement)); true`)
	}
	missed := eval[[]string](b, tabControlsJS+`.filter((el) => !window.__tabSeen.has(window.__tabKey(el))).map((el) => el.outerHTML.slice(0, 100))`)
	if len(missed) > 0 {
		b.t.Errorf("%s: Tab never reached:\n%s", page, strings.Join(missed, "\n"))
	}
}

// tabKeyJS defines window.__tabKey: what identifies a control across a
// redraw of the page.
const tabKeyJS = `window.__tabKey = (el) => [el.tagName, el.getAttribute('href') || '', el.id || '', el.getAttribute('name') || '', el.getAttribute('aria-label') || '', (el.textContent || '').trim().slice(0, 60)].join('|'); `

// tabControlsJS is the page's keyboard controls outside a list's rows.
const tabControlsJS = `[...document.querySelectorAll('a[href], button, input, select, textarea, summary, canvas[tabindex], .vlist')].filter((el) => !el.closest('[hidden]') && el.getClientRects().length && !el.closest('.vlist .spacer') && !el.disabled)`

func evalVoid(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](expr)
}

func navigate(url string) chromedp.Action[chromedp.Void] { return chromedp.Navigate(url) }
