package auditlog

import (
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var reportTemplate string

// ReportCSS is the report's style sheet: inline in the file of `audit
// report`, and served beside the relay's page. Every rule is scoped to the
// report's div.report (and body.report-doc, the file's page).
//
//go:embed report.css
var ReportCSS string

var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"dur":     humanSeconds,
	"seconds": func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) },
	"css":     func() template.CSS { return template.CSS(ReportCSS) },
	"date":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
}).Parse(reportTemplate))

// Live is what the relay's page adds to the report: the latest signed
// checkpoint, kept up to date without a reload.
type Live struct {
	// Checkpoint is the path of the latest checkpoint as a part of the page
	// that updates itself (pkg/web's data-live: answered with the note,
	// HTML-escaped, and 204 while it did not change).
	Checkpoint string
}

// WriteHTML writes the report as one self-contained HTML document: inline
// style sheet and SVG charts, no script, nothing to fetch.
func (r *Report) WriteHTML(w io.Writer) error {
	if err := reportPage.ExecuteTemplate(w, "document", r.view(nil)); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// WriteBody writes the report alone, without the document around it, for
// a page of the relay: a <div class="report"> styled by ReportCSS, with
// live's parts.
func (r *Report) WriteBody(w io.Writer, live *Live) error {
	if err := reportPage.ExecuteTemplate(w, "body", r.view(live)); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// figure is one headline number.
type figure struct {
	Key, Label string
	Value      int
}

// authorityCount is a count per authority.
type authorityCount struct {
	Authority string
	Count     int
}

type reportView struct {
	*Report
	Live        *Live
	Intact      bool
	Verdict     string
	Checkpoint  *Checkpoint
	Root        string
	Unsigned    uint64
	Figures     []figure
	Days        []DayCount
	ByCategory  Chart
	ByPriority  Chart
	Authorities []Row
	Totals      []Row
	ToDelivered Chart
	ToAck       Chart
	Rejections  []ReasonCount
	RejChart    Chart
	Withdrawals []authorityCount
}

func (r *Report) view(live *Live) reportView {
	v := reportView{Report: r, Live: live, Intact: r.Verification.Problem == nil, Verdict: r.Verification.Verdict(),
		Checkpoint: r.Verification.Largest, Days: r.Replay.Days, Rejections: r.Replay.Rejections}
	if v.Checkpoint != nil {
		v.Root = base64.StdEncoding.EncodeToString(v.Checkpoint.Root)
	}
	if r.Verification.Leaves > r.Verification.Covered {
		v.Unsigned = r.Verification.Leaves - r.Verification.Covered
	}
	escalated, late, overdue := 0, 0, 0
	for _, row := range r.Replay.Rows {
		if row.Authority == "all" {
			v.Totals = append(v.Totals, row)
			escalated += row.Escalated
			late += row.Late
			overdue += row.Overdue
			continue
		}
		v.Authorities = append(v.Authorities, row)
	}
	messages := 0
	for _, m := range r.Replay.Messages {
		messages += m.Sent
	}
	v.Figures = []figure{
		{"accepted", "notices accepted", r.Replay.Accepted},
		{"rejected", "submissions rejected", r.Replay.Rejected},
		{"withdrawn", "notices withdrawn", r.Replay.Withdrawn},
		{"escalated", "urgent deliveries escalated", escalated},
		{"late", "urgent deliveries acknowledged after the deadline", late},
		{"overdue", "urgent deliveries unacknowledged past the deadline", overdue},
		{"dead-lettered", "deliveries dead-lettered", r.Replay.DeadLettered},
		{"messages", "messages sent", messages},
		{"attachments", "evidence files added", r.Replay.Attachments.Added},
	}
	v.ByCategory, v.ByPriority = dayCharts(r.Replay.Days)
	v.ToDelivered = durationChart("to-delivered", "Time from acceptance to delivery",
		"Median (dark bar), 90th percentile (light bar) and maximum (black tick) of the time from acceptance to delivery, per authority and urgency.",
		v.Authorities, func(row Row) Durations { return row.ToDelivered })
	v.ToAck = durationChart("to-ack", "Time from acceptance to acknowledgement",
		"Median (dark bar), 90th percentile (light bar) and maximum (black tick) of the time from acceptance to acknowledgement, per authority and urgency.",
		v.Authorities, func(row Row) Durations { return row.ToAcknowledged })
	var bars []Bar
	for _, rc := range r.Replay.Rejections {
		bars = append(bars, Bar{Label: rc.Reason, Fill: palette[0], Value: float64(rc.Count), Title: fmt.Sprintf("%s: %d", rc.Reason, rc.Count)})
	}
	v.RejChart = barChart("rejections", "Rejected submissions by reason", "Number of rejected submissions that gave each reason code.",
		bars, niceScale, func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) })
	withdrawn := map[string]int{}
	for _, row := range v.Authorities {
		withdrawn[row.Authority] += row.Withdrawn
	}
	for a, n := range withdrawn {
		if n > 0 {
			v.Withdrawals = append(v.Withdrawals, authorityCount{a, n})
		}
	}
	slices.SortFunc(v.Withdrawals, func(a, b authorityCount) int { return strings.Compare(a.Authority, b.Authority) })
	return v
}

// dayCharts draws the notices per day by category and by urgency.
func dayCharts(days []DayCount) (byCategory, byPriority Chart) {
	var xs, cats []string
	for _, d := range days {
		if !slices.Contains(xs, d.Day) {
			xs = append(xs, d.Day)
		}
		if !slices.Contains(cats, d.Category) {
			cats = append(cats, d.Category)
		}
	}
	slices.Sort(cats)
	var catSeries []Series
	for i, c := range cats {
		catSeries = append(catSeries, Series{Label: c, Fill: palette[i%len(palette)]})
	}
	prios := []string{"urgent", "normal"}
	var prioSeries []Series
	for _, p := range prios {
		prioSeries = append(prioSeries, Series{Label: p, Fill: priorityFill[p]})
	}
	count := func(x int, match func(DayCount) bool) int {
		n := 0
		for _, d := range days {
			if d.Day == xs[x] && match(d) {
				n += d.Count
			}
		}
		return n
	}
	byCategory = columnChart("days-category", "Notices accepted per day, by category",
		"Stacked columns: the number of notices accepted each day (UTC), one colour per category.", xs, catSeries,
		func(x, s int) int { return count(x, func(d DayCount) bool { return d.Category == cats[s] }) })
	byPriority = columnChart("days-urgency", "Notices accepted per day, by urgency",
		"Stacked columns: the number of notices accepted each day (UTC), urgent and normal.", xs, prioSeries,
		func(x, s int) int { return count(x, func(d DayCount) bool { return d.Priority == prios[s] }) })
	return byCategory, byPriority
}

// durationChart draws one bar per authority and urgency.
func durationChart(id, title, desc string, rows []Row, of func(Row) Durations) Chart {
	var bars []Bar
	for _, row := range rows {
		d := of(row)
		if d.Count == 0 {
			continue
		}
		bars = append(bars, Bar{Label: row.Authority + " · " + row.Priority, Fill: priorityFill[row.Priority],
			Value: d.Median, Mark: d.P90, Max: d.Max,
			Title: fmt.Sprintf("%s, %s: median %s, p90 %s, max %s (%d)", row.Authority, row.Priority,
				humanSeconds(d.Median), humanSeconds(d.P90), humanSeconds(d.Max), d.Count)})
	}
	c := barChart(id, title, desc, bars, niceDurations, humanSeconds)
	c.Key = "Dark bar: median; light bar: 90th percentile; black tick: maximum."
	return c
}

// humanSeconds writes a duration for people: "0.42 s", "12.3 s",
// "4 min 05 s", "2 h 05 min", "3 d 04 h".
func humanSeconds(s float64) string {
	switch {
	case s == 0:
		return "0"
	case s < 10:
		return strconv.FormatFloat(math.Round(s*100)/100, 'f', -1, 64) + " s"
	case s < 60:
		return strconv.FormatFloat(math.Round(s*10)/10, 'f', -1, 64) + " s"
	}
	d := time.Duration(math.Round(s)) * time.Second
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d d %02d h", int(d.Hours())/24, int(d.Hours())%24)
}
