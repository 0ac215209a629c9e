package portal_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// do runs browser steps with a deadline, failing the test on error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	relaytest.Do(t, ctx, what, steps...)
}

// waitFor polls a JavaScript condition in the page until it holds.
func waitFor(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	relaytest.WaitFor(t, ctx, what, cond)
}

// js evaluates an expression (awaiting a promise) in the page.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return relaytest.JS[T](t, ctx, expr)
}

func q(sel string) string { return "document.querySelector(" + strconv.Quote(sel) + ")" }

// text returns the rendered text of the first element matching sel, once
// there is one.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	waitFor(t, ctx, sel, q(sel))
	return strings.TrimSpace(js[string](t, ctx, "("+q(sel)+" || {innerText: ''}).innerText"))
}

// open navigates to url and waits for an element of the page.
func open(t *testing.T, ctx context.Context, url, sel string) {
	t.Helper()
	do(t, ctx, "opening "+url, chromedp.Navigate(url))
	waitFor(t, ctx, sel+" on "+url, q(sel))
}

// set sets the value of a form field, as typing or a choice would.
func set(t *testing.T, ctx context.Context, sel, value string) {
	t.Helper()
	waitFor(t, ctx, sel, q(sel))
	js[bool](t, ctx, "(() => { const e = "+q(sel)+"; if (e.type === 'checkbox') e.checked = "+strconv.FormatBool(value != "")+
		"; else e.value = "+strconv.Quote(value)+"; e.dispatchEvent(new Event('input')); return true })()")
}

// click clicks the element (a submit button submits its form with its
// name and value).
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	waitFor(t, ctx, sel, q(sel))
	js[bool](t, ctx, "(() => { "+q(sel)+".click(); return true })()")
}

// mark marks the page, to tell a reload (which drops the mark) from a
// page that changed in place.
func mark(t *testing.T, ctx context.Context) {
	js[bool](t, ctx, "(() => { window.__portalMark = true; return true })()")
}

// clearCookies removes every cookie of the browser.
func clearCookies() chromedp.Action[chromedp.Void] { return relaytest.ClearCookies() }

// screenshot saves a full-page PNG under $NR_SCREENSHOTS, when it is set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	relaytest.Screenshot(t, ctx, name)
}
