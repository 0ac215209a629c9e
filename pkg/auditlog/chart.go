package auditlog

import (
	"fmt"
	"math"
	"strconv"
)

// Chart is an SVG chart, drawn by the program: every shape is computed
// here and written by the report's template, so the report needs no
// script to be read. Each chart stands in front of a table with the same
// numbers.
type Chart struct {
	ID, Title, Desc string
	// Key, when set, says under the chart how to read its marks.
	Key    string
	W, H   int
	Rects  []Rect
	Lines  []Line
	Texts  []Text
	Legend []Swatch
}

// Rect is a bar; its Title is what a pointer over it shows.
type Rect struct {
	X, Y, W, H float64
	Fill       string
	// Opacity, when not zero, lightens the fill.
	Opacity float64
	Title   string
}

// Line is an axis, a grid line or a marker.
type Line struct {
	X1, Y1, X2, Y2 float64
	Class          string
}

// Text is a label; Anchor is start, middle or end.
type Text struct {
	X, Y   float64
	Anchor string
	Class  string
	Text   string
	// Rotate, when not zero, turns the label around its anchor (degrees).
	Rotate float64
}

// Swatch is one entry of a chart's legend.
type Swatch struct {
	Fill, Label string
}

// Colours of the Okabe-Ito palette, told apart by people with colour
// vision deficiencies too.
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"}

// priorityFill gives urgent and normal notices the same colour everywhere.
var priorityFill = map[string]string{"urgent": "#D55E00", "normal": "#0072B2"}

// niceScale returns a maximum at or above max and the step of about n
// ticks up to it, both whole round numbers (the charts count things).
func niceScale(max float64, n int) (top, step float64) {
	if max <= 0 {
		return 1, 1
	}
	raw := max / float64(n)
	mag := math.Max(1, math.Pow(10, math.Floor(math.Log10(raw))))
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	return math.Ceil(max/step) * step, step
}

// Series is one stack of a column chart.
type Series struct {
	Label string
	Fill  string
}

// columnChart draws stacked columns: one per x label, one segment per
// series, value(x, s) high. Counts only (whole numbers on the axis).
func columnChart(id, title, desc string, xs []string, series []Series, value func(x, s int) int) Chart {
	const left, right, top, height = 44.0, 12.0, 12.0, 200.0
	// A few days get wide columns under level labels; many get narrow ones
	// under slanted labels, every few days.
	colW, bottom, slant := 80.0, 28.0, false
	if len(xs) > 6 {
		colW, bottom, slant = max(6, min(28, 680/float64(len(xs)))), 70.0, true
	}
	w := left + right + colW*float64(max(len(xs), 1))
	c := Chart{ID: id, Title: title, Desc: desc, W: int(math.Ceil(max(w, 240))), H: int(top + height + bottom)}
	maxTotal := 0
	for x := range xs {
		t := 0
		for s := range series {
			t += value(x, s)
		}
		maxTotal = max(maxTotal, t)
	}
	ymax, step := niceScale(float64(maxTotal), 5)
	y := func(v float64) float64 { return top + height - v/ymax*height }
	for v := 0.0; v <= ymax+1e-9; v += step {
		c.Lines = append(c.Lines, Line{X1: left, Y1: y(v), X2: float64(c.W) - right, Y2: y(v), Class: "grid"})
		c.Texts = append(c.Texts, Text{X: left - 6, Y: y(v) + 4, Anchor: "end", Class: "tick", Text: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	for x, label := range xs {
		x0 := left + colW*float64(x) + colW*0.15
		base := 0.0
		for s, se := range series {
			v := float64(value(x, s))
			if v == 0 {
				continue
			}
			c.Rects = append(c.Rects, Rect{X: x0, Y: y(base + v), W: colW * 0.7, H: y(base) - y(base+v), Fill: se.Fill,
				Title: fmt.Sprintf("%s, %s: %d", label, se.Label, int(v))})
			base += v
		}
		switch {
		case !slant:
			c.Texts = append(c.Texts, Text{X: x0 + colW*0.35, Y: top + height + 18, Anchor: "middle", Class: "xlabel", Text: label})
		case len(xs) <= 24 || x%max(1, len(xs)/12) == 0:
			c.Texts = append(c.Texts, Text{X: x0 + colW*0.35, Y: top + height + 14, Anchor: "end", Class: "xlabel", Text: label, Rotate: -45})
		}
	}
	c.Lines = append(c.Lines, Line{X1: left, Y1: y(0), X2: float64(c.W) - right, Y2: y(0), Class: "axis"})
	for _, se := range series {
		c.Legend = append(c.Legend, Swatch{Fill: se.Fill, Label: se.Label})
	}
	return c
}

// Bar is one row of a bar chart: a bar of Value, and when Mark is above
// zero a thinner bar behind it up to Mark and a tick at Max (a median, its
// 90th percentile and the maximum).
type Bar struct {
	Label            string
	Fill             string
	Value, Mark, Max float64
	Title            string
}

// niceDurations returns a maximum at or above max seconds and a step of
// about n ticks, both round durations (seconds, minutes, hours, days).
func niceDurations(max float64, n int) (top, step float64) {
	if max <= 0 {
		return 1, 1
	}
	raw := max / float64(n)
	steps := []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
		60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400}
	step = steps[len(steps)-1] * math.Ceil(raw/steps[len(steps)-1])
	for _, s := range steps {
		if s >= raw {
			step = s
			break
		}
	}
	return math.Ceil(max/step) * step, step
}

// barChart draws horizontal bars with their labels on the left; scale
// chooses the axis' end and step, format writes its values.
func barChart(id, title, desc string, bars []Bar, scale func(float64, int) (float64, float64), format func(float64) string) Chart {
	const left, right, top, rowH, width = 150.0, 24.0, 8.0, 22.0, 300.0
	c := Chart{ID: id, Title: title, Desc: desc, W: int(left + width + right), H: int(top + rowH*float64(len(bars)) + 30)}
	vmax := 0.0
	for _, b := range bars {
		vmax = max(vmax, b.Value, b.Mark, b.Max)
	}
	xmax, step := scale(vmax, 4)
	x := func(v float64) float64 { return left + v/xmax*width }
	bottom := top + rowH*float64(len(bars))
	for v := 0.0; v <= xmax+1e-9; v += step {
		c.Lines = append(c.Lines, Line{X1: x(v), Y1: top, X2: x(v), Y2: bottom, Class: "grid"})
		anchor := "middle"
		if v+step > xmax+1e-9 {
			anchor = "end" // the last label ends at the axis' end, inside the chart
		}
		c.Texts = append(c.Texts, Text{X: x(v), Y: bottom + 16, Anchor: anchor, Class: "tick", Text: format(v)})
	}
	for i, b := range bars {
		y0 := top + rowH*float64(i)
		c.Texts = append(c.Texts, Text{X: left - 8, Y: y0 + rowH/2 + 4, Anchor: "end", Class: "ylabel", Text: b.Label})
		if b.Mark > 0 {
			c.Rects = append(c.Rects, Rect{X: left, Y: y0 + 4, W: x(b.Mark) - left, H: rowH - 8, Fill: b.Fill, Opacity: 0.35, Title: b.Title})
		}
		c.Rects = append(c.Rects, Rect{X: left, Y: y0 + 7, W: x(b.Value) - left, H: rowH - 14, Fill: b.Fill, Title: b.Title})
		if b.Max > 0 {
			c.Lines = append(c.Lines, Line{X1: x(b.Max), Y1: y0 + 3, X2: x(b.Max), Y2: y0 + rowH - 3, Class: "max"})
		}
	}
	c.Lines = append(c.Lines, Line{X1: left, Y1: top, X2: left, Y2: bottom, Class: "axis"})
	return c
}
