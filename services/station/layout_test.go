package station_test

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// readable opens url at the browser's current size and checks what every
// page of the station owes a reader on a laptop or a tablet: nothing
// wider than the screen, the authority named, the count of unopened
// urgent notices in the navigation, one h1, every control
// labelled, and the skip link first in the keyboard's order with a
// visible focus ring. It saves a screenshot as shot, if not empty.
func readable(t *testing.T, ctx context.Context, url, sel, shot string) {
	t.Helper()
	open(t, ctx, url, sel)
	if over := js[int](t, ctx, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); over > 0 {
		t.Fatalf("%s is %d px wider than the screen (%d px)", url, over, js[int](t, ctx, `document.documentElement.clientWidth`))
	}
	if got := text(t, ctx, ".top .authority"); got != authorityName+" ("+authority+")" {
		t.Fatalf("%s names %q", url, got)
	}
	if !js[bool](t, ctx, `/^\d+$/.test(document.querySelector(".top nav .badge").textContent)`) {
		t.Fatalf("%s does not show the count of unopened urgent notices", url)
	}
	if n := js[int](t, ctx, `document.querySelectorAll("h1").length`); n != 1 {
		t.Fatalf("%s has %d h1 headings", url, n)
	}
	if bare := js[string](t, ctx, `Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea, button"))
		.filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !(e.tagName === "BUTTON" && e.textContent.trim()))
		.map(e => e.outerHTML).join("\n")`); bare != "" {
		t.Fatalf("%s has controls without a label:\n%s", url, bare)
	}
	if shot != "" {
		screenshot(t, ctx, shot)
	}
	js[bool](t, ctx, `(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); return true })()`)
	do(t, ctx, "the tab key", chromedp.KeyEvent(kb.Tab))
	if !js[bool](t, ctx, `document.activeElement.classList.contains("skip") && getComputedStyle(document.activeElement).outlineStyle !== "none"`) {
		t.Fatalf("%s: the first tab stop is %q, not the skip link with a focus ring", url, js[string](t, ctx, `document.activeElement.outerHTML`))
	}
}

// mediaBox finds a PDF page's size in points.
var mediaBox = regexp.MustCompile(`/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)\s*\]`)

// printsOnA4 prints the current page as Chromium's print dialog would
// (the page's CSS decides the paper) and checks that the paper is A4 and
// that the page prints on few sheets. With $NR_PRINT_PDF it keeps the PDF
// there, to look at.
func printsOnA4(t *testing.T, ctx context.Context, maxPages int) {
	t.Helper()
	yes := true
	res := get(t, ctx, "printing to PDF", chromedp.Action[page.PrintToPDFResult](func(ctx context.Context, tg *chromedp.Target) (page.PrintToPDFResult, error) {
		return cdp.Call(ctx, tg, page.PrintToPDF, page.PrintToPDFParams{PreferCSSPageSize: &yes})
	}))
	if p := os.Getenv("NR_PRINT_PDF"); p != "" {
		if err := os.WriteFile(p, res.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	boxes := mediaBox.FindAllSubmatch(res.Data, -1)
	if len(boxes) == 0 || len(boxes) > maxPages {
		t.Fatalf("the print view makes %d pages, want 1 to %d", len(boxes), maxPages)
	}
	for _, b := range boxes {
		w, _ := strconv.ParseFloat(string(b[1]), 64)
		h, _ := strconv.ParseFloat(string(b[2]), 64)
		// A4 is 595.3 × 841.9 points.
		if w < 593 || w > 598 || h < 839 || h > 845 {
			t.Fatalf("a printed page is %.1f × %.1f points, not A4", w, h)
		}
	}
}
