package relaytest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Browser starts Debian's Chromium headless (1280x900) for the test and
// returns its context; it stops with the test. Without a browser the test
// skips with the reason, except in CI (CI=true), where it fails: .ci/run
// installs Chromium, so browser tests never go missing quietly.
func Browser(t testing.TB) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium on PATH: CI must install it (apt-get install -y chromium; .ci/run does)")
		}
		t.Skip("no chromium on PATH: apt-get install -y chromium (.ci/run does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// Do runs browser steps with a deadline of a minute, failing the test on
// error.
func Do(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// WaitFor polls a JavaScript condition in the page until it holds, for up
// to a minute: after a form's submission the old page may still be there
// for a moment.
func WaitFor(t testing.TB, ctx context.Context, what, cond string) {
	t.Helper()
	Eventually(t, 60*time.Second, what, func() bool {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool]("!!("+cond+")"))
		return err == nil && ok
	})
}

// Get runs a browser action that yields a value, with a deadline of a
// minute, failing the test on error.
func Get[T any](t testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// JS evaluates an expression in the page (awaiting a promise), failing
// the test on error.
func JS[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	return Get(t, ctx, "evaluating "+expr, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// Screenshot saves a full-page PNG of the page as dir/name when
// $NR_SCREENSHOTS names a dir (docs/img is made so, e.g.
// NR_SCREENSHOTS=$PWD/docs/img go test ./services/portal); else it does
// nothing.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("NR_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := Get(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ClearCookies removes every cookie of the browser.
func ClearCookies() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.ClearBrowserCookies, cdp.Empty{})
		return err
	})
}
