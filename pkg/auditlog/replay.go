package auditlog

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/message"
)

// ReplayOptions say what state to rebuild.
type ReplayOptions struct {
	// At is the moment whose state is rebuilt: events timed after it are
	// ignored.
	At time.Time
	// Since, when not zero, leaves out notices accepted and submissions
	// rejected before it.
	Since time.Time
	// UrgentDeadline is deliveries.urgent_deadline: an urgent notice
	// delivery queued longer ago than this and still not acknowledged is
	// overdue. Zero counts none.
	UrgentDeadline time.Duration
	// Retention is how long notice bodies are kept (retention.notices).
	Retention time.Duration
	// BodyGone, when not nil, says whether the body of the notice with this
	// pseudonym is no longer stored (known only against a running relay).
	BodyGone func(pseudonym string) bool
	// Progress, when not nil, is called now and then with the leaves read.
	Progress func(leaves uint64)
}

// Durations summarises the times from acceptance to a step, in seconds.
type Durations struct {
	Count  int     `json:"count"`
	Median float64 `json:"median_s"`
	P90    float64 `json:"p90_s"`
	P95    float64 `json:"p95_s"`
	Max    float64 `json:"max_s"`
}

// Row is the statistics of one authority (or "all") and priority.
type Row struct {
	Authority    string `json:"authority"`
	Priority     string `json:"priority"`
	Queued       int    `json:"queued"`
	Delivered    int    `json:"delivered"`
	Acknowledged int    `json:"acknowledged"`
	Withdrawn    int    `json:"withdrawn"`
	// Escalated counts the deliveries the relay escalated: urgent and
	// unacknowledged at their deadline.
	Escalated int `json:"escalated"`
	// Late counts the urgent deliveries acknowledged, but more than the
	// urgent deadline after they were queued.
	Late int `json:"late"`
	// Overdue counts the urgent deliveries still unacknowledged (and not
	// withdrawn) longer than the urgent deadline after they were queued.
	Overdue int `json:"overdue"`
	// DeadLettered counts the deliveries moved to the dead-letter stream
	// (a webhook past its retry budget, a delivery that could not be
	// processed), even if a redrive delivered them since.
	DeadLettered   int       `json:"dead_lettered"`
	ToQueued       Durations `json:"to_queued"`
	ToDelivered    Durations `json:"to_delivered"`
	ToAcknowledged Durations `json:"to_acknowledged"`
}

// DayCount is the number of notices accepted on one day (UTC) of one
// category and priority.
type DayCount struct {
	Day      string `json:"day"`
	Category string `json:"category"`
	Priority string `json:"priority"`
	Count    int    `json:"count"`
}

// ReasonCount is the number of rejected submissions that gave one reason
// code (a submission can give several).
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// ExpiredBody is a notice whose body the relay no longer keeps.
type ExpiredBody struct {
	Notice     string `json:"notice"`
	AcceptedAt string `json:"accepted_at"`
	// Why is "retention" (accepted longer ago than retention.notices) or
	// "gone" (the body is no longer stored).
	Why string `json:"why"`
}

// MessageCount is what happened to the messages of one kind sent by one
// side (contract section 8): "authority" (to the platform) or "platform"
// (to an authority).
type MessageCount struct {
	Kind         string `json:"kind"`
	From         string `json:"from"`
	Sent         int    `json:"sent"`
	Delivered    int    `json:"delivered"`
	Acknowledged int    `json:"acknowledged"`
}

// Replay is the lifecycle of every notice rebuilt from the log.
type Replay struct {
	At        string `json:"at"`
	Since     string `json:"since,omitempty"`
	Leaves    uint64 `json:"leaves"`
	Accepted  int    `json:"accepted"`
	Rejected  int    `json:"rejected"`
	Withdrawn int    `json:"withdrawn"`
	// FollowedUp and Superseded count the links of later notices to
	// earlier ones (contract section 9) recorded in the period: a
	// followed_up or superseded event each.
	FollowedUp int `json:"followed_up"`
	Superseded int `json:"superseded"`
	// DeadLettered counts the deliveries of every kind (notices,
	// withdrawals, escalations, messages, files) dead-lettered in the
	// period: a dead_lettered event each.
	DeadLettered int           `json:"dead_lettered"`
	Rows         []Row         `json:"rows"`
	Days         []DayCount    `json:"days"`
	Rejections   []ReasonCount `json:"rejections"`
	Expired      []ExpiredBody `json:"expired_bodies"`
	// Messages counts the messages between authorities and platforms by
	// kind and sender, in the period.
	Messages []MessageCount `json:"messages"`
	// Attachments counts evidence files added in the period and what
	// happened to their deliveries (one per file and recipient).
	Attachments AttachmentCount `json:"attachments"`
}

// AttachmentCount is what happened to evidence files (contract section 7).
type AttachmentCount struct {
	Added        int `json:"added"`
	Queued       int `json:"queued"`
	Delivered    int `json:"delivered"`
	Acknowledged int `json:"acknowledged"`
}

type recipientLife struct {
	queued, delivered, acked time.Time
	escalated, dead          bool
}

type noticeLife struct {
	accepted   time.Time
	priority   string
	category   string
	withdrawn  bool
	recipients map[string]*recipientLife
}

// replayer rebuilds the lifecycles one leaf at a time, so that the replay
// can read the log on its own (RunReplay) or in the pass that verifies it
// (BuildReport).
type replayer struct {
	o          ReplayOptions
	r          *Replay
	notices    map[string]*noticeLife
	order      []string
	rejections map[string]int
	messages   map[messageKey]*MessageCount
}

type messageKey struct{ kind, from string }

func newReplayer(o ReplayOptions) *replayer {
	r := &Replay{At: o.At.UTC().Format(time.RFC3339)}
	if !o.Since.IsZero() {
		r.Since = o.Since.UTC().Format(time.RFC3339)
	}
	return &replayer{o: o, r: r, notices: map[string]*noticeLife{}, rejections: map[string]int{},
		messages: map[messageKey]*MessageCount{}}
}

// RunReplay rebuilds each notice's lifecycle from the leaves.
func RunReplay(ctx context.Context, leaves Leaves, o ReplayOptions) (*Replay, error) {
	p := newReplayer(o)
	err := leaves.Each(ctx, func(i uint64, data []byte) error {
		if err := p.leaf(i, data); err != nil {
			return fmt.Errorf("leaf %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p.result(), nil
}

// leaf takes the event of leaf i into account.
func (p *replayer) leaf(i uint64, data []byte) error {
	p.r.Leaves = i + 1
	if p.o.Progress != nil && (i+1)%(1<<16) == 0 {
		p.o.Progress(i + 1)
	}
	e, err := event.Decode(data)
	if err != nil {
		return fmt.Errorf("it no longer reads as an event: %w", err)
	}
	if e.Time.After(p.o.At) {
		return nil
	}
	if e.Type == event.Rejected {
		if e.Time.Before(p.o.Since) {
			return nil
		}
		p.r.Rejected += e.Submissions()
		for _, reason := range e.Reasons {
			p.rejections[reason] += max(1, e.ReasonCounts[reason])
		}
		return nil
	}
	if e.Type == event.DeadLettered && !e.Time.Before(p.o.Since) {
		p.r.DeadLettered++
	}
	if e.Kind == event.KindMessage {
		p.message(e)
		return nil
	}
	if e.Type == event.AttachmentAdded || e.Kind == event.KindAttachment {
		p.attachment(e)
		return nil
	}
	if e.Type == event.FollowedUp || e.Type == event.Superseded {
		if !e.Time.Before(p.o.Since) {
			if e.Type == event.FollowedUp {
				p.r.FollowedUp++
			} else {
				p.r.Superseded++
			}
		}
		return nil
	}
	n, ok := p.notices[e.Notice]
	if !ok {
		n = &noticeLife{recipients: map[string]*recipientLife{}}
		p.notices[e.Notice] = n
		p.order = append(p.order, e.Notice)
	}
	if e.Priority != "" {
		n.priority = e.Priority
	}
	switch e.Type {
	case event.Accepted:
		n.accepted, n.category = e.Time, e.Category
	case event.Withdrawn:
		n.withdrawn = true
	case event.Queued, event.Delivered, event.Acknowledged, event.Escalated, event.DeadLettered:
		if e.Kind != "" && e.Kind != event.KindNotice {
			return nil
		}
		rl := n.recipients[e.Recipient]
		if rl == nil {
			rl = &recipientLife{}
			n.recipients[e.Recipient] = rl
		}
		switch e.Type {
		case event.Queued:
			rl.queued = e.Time
		case event.Delivered:
			rl.delivered = e.Time
		case event.Acknowledged:
			rl.acked = e.Time
		case event.Escalated:
			rl.escalated = true
		case event.DeadLettered:
			rl.dead = true
		}
	}
	return nil
}

// message counts a message's event: sent, first handed out, or
// acknowledged by its recipient.
func (p *replayer) message(e *event.Event) {
	if e.Time.Before(p.o.Since) {
		return
	}
	from := "platform"
	if e.Recipient == message.Platform {
		from = "authority"
	}
	k := messageKey{e.MessageKind, from}
	c := p.messages[k]
	if c == nil {
		c = &MessageCount{Kind: k.kind, From: k.from}
		p.messages[k] = c
	}
	switch e.Type {
	case event.MessageSent:
		c.Sent++
	case event.MessageDelivered:
		c.Delivered++
	case event.Acknowledged:
		c.Acknowledged++
	}
}

// attachment counts an evidence file's event.
func (p *replayer) attachment(e *event.Event) {
	if e.Time.Before(p.o.Since) {
		return
	}
	c := &p.r.Attachments
	switch e.Type {
	case event.AttachmentAdded:
		c.Added++
	case event.Queued:
		c.Queued++
	case event.AttachmentDelivered:
		c.Delivered++
	case event.Acknowledged:
		c.Acknowledged++
	}
}

// result computes the statistics of the leaves read.
func (p *replayer) result() *Replay {
	r, o := p.r, p.o
	type key struct{ authority, priority string }
	type acc struct {
		row           Row
		toQ, toD, toA []float64
	}
	rows := map[key]*acc{}
	add := func(k key, rl *recipientLife, n *noticeLife) {
		a := rows[k]
		if a == nil {
			a = &acc{row: Row{Authority: k.authority, Priority: k.priority}}
			rows[k] = a
		}
		since := func(t time.Time) float64 { return t.Sub(n.accepted).Seconds() }
		if !rl.queued.IsZero() {
			a.row.Queued++
			a.toQ = append(a.toQ, since(rl.queued))
		}
		if !rl.delivered.IsZero() {
			a.row.Delivered++
			a.toD = append(a.toD, since(rl.delivered))
		}
		if !rl.acked.IsZero() {
			a.row.Acknowledged++
			a.toA = append(a.toA, since(rl.acked))
		}
		if n.withdrawn {
			a.row.Withdrawn++
		}
		if rl.escalated {
			a.row.Escalated++
		}
		if rl.dead {
			a.row.DeadLettered++
		}
		if o.UrgentDeadline > 0 && n.priority == "urgent" && !rl.queued.IsZero() {
			switch {
			case !rl.acked.IsZero() && rl.acked.Sub(rl.queued) > o.UrgentDeadline:
				a.row.Late++
			case rl.acked.IsZero() && !n.withdrawn && o.At.Sub(rl.queued) > o.UrgentDeadline:
				a.row.Overdue++
			}
		}
	}
	type day struct{ day, category, priority string }
	days := map[day]int{}
	for _, ps := range p.order {
		n := p.notices[ps]
		if n.accepted.IsZero() || n.accepted.Before(o.Since) {
			continue // accepted after At, or before Since
		}
		r.Accepted++
		if n.withdrawn {
			r.Withdrawn++
		}
		category := n.category
		if category == "" {
			category = "unrecorded" // accepted before the log held categories
		}
		days[day{n.accepted.UTC().Format(time.DateOnly), category, n.priority}]++
		for authority, rl := range n.recipients {
			add(key{authority, n.priority}, rl, n)
			add(key{"all", n.priority}, rl, n)
		}
		switch {
		case o.Retention > 0 && o.At.Sub(n.accepted) > o.Retention:
			r.Expired = append(r.Expired, ExpiredBody{Notice: ps, AcceptedAt: n.accepted.UTC().Format(time.RFC3339Nano), Why: "retention"})
		case o.BodyGone != nil && o.BodyGone(ps):
			r.Expired = append(r.Expired, ExpiredBody{Notice: ps, AcceptedAt: n.accepted.UTC().Format(time.RFC3339Nano), Why: "gone"})
		}
	}
	for _, a := range rows {
		a.row.ToQueued, a.row.ToDelivered, a.row.ToAcknowledged = summarise(a.toQ), summarise(a.toD), summarise(a.toA)
		r.Rows = append(r.Rows, a.row)
	}
	slices.SortFunc(r.Rows, func(a, b Row) int {
		if (a.Authority == "all") != (b.Authority == "all") {
			if a.Authority == "all" {
				return 1
			}
			return -1
		}
		if c := strings.Compare(a.Authority, b.Authority); c != 0 {
			return c
		}
		return strings.Compare(b.Priority, a.Priority) // urgent before normal
	})
	r.Days = []DayCount{}
	for d, c := range days {
		r.Days = append(r.Days, DayCount{Day: d.day, Category: d.category, Priority: d.priority, Count: c})
	}
	slices.SortFunc(r.Days, func(a, b DayCount) int {
		return cmp.Or(strings.Compare(a.Day, b.Day), strings.Compare(a.Category, b.Category), strings.Compare(b.Priority, a.Priority))
	})
	r.Rejections = []ReasonCount{}
	for reason, c := range p.rejections {
		r.Rejections = append(r.Rejections, ReasonCount{Reason: reason, Count: c})
	}
	slices.SortFunc(r.Rejections, func(a, b ReasonCount) int {
		return cmp.Or(b.Count-a.Count, strings.Compare(a.Reason, b.Reason))
	})
	r.Messages = []MessageCount{}
	for _, c := range p.messages {
		r.Messages = append(r.Messages, *c)
	}
	slices.SortFunc(r.Messages, func(a, b MessageCount) int {
		return cmp.Or(strings.Compare(a.From, b.From), strings.Compare(a.Kind, b.Kind))
	})
	if r.Rows == nil {
		r.Rows = []Row{}
	}
	if r.Expired == nil {
		r.Expired = []ExpiredBody{}
	}
	return r
}

// summarise gives the count, median, 90th and 95th percentile (nearest
// rank) and maximum.
func summarise(s []float64) Durations {
	if len(s) == 0 {
		return Durations{}
	}
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return math.Round(s[max(i, 0)]*1000) / 1000
	}
	return Durations{Count: len(s), Median: rank(0.5), P90: rank(0.9), P95: rank(0.95), Max: rank(1)}
}

// WriteJSON writes the replay as JSON.
func (r *Replay) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteCSV writes the statistics table as CSV, one row per authority and
// priority (the expired bodies are in the JSON and text output). The
// service-level counts come last, so that the earlier columns keep their
// places.
func (r *Replay) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"authority", "priority", "queued", "delivered", "acknowledged", "withdrawn",
		"to_queued_median_s", "to_queued_p95_s", "to_delivered_median_s", "to_delivered_p95_s",
		"to_acknowledged_median_s", "to_acknowledged_p95_s", "escalated", "late", "overdue", "dead_lettered"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, row := range r.Rows {
		_ = cw.Write([]string{row.Authority, row.Priority, strconv.Itoa(row.Queued), strconv.Itoa(row.Delivered),
			strconv.Itoa(row.Acknowledged), strconv.Itoa(row.Withdrawn),
			f(row.ToQueued.Median), f(row.ToQueued.P95), f(row.ToDelivered.Median), f(row.ToDelivered.P95),
			f(row.ToAcknowledged.Median), f(row.ToAcknowledged.P95),
			strconv.Itoa(row.Escalated), strconv.Itoa(row.Late), strconv.Itoa(row.Overdue), strconv.Itoa(row.DeadLettered)})
	}
	cw.Flush()
	return cw.Error()
}

// WriteText writes the replay for people.
func (r *Replay) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "as of %s: %d leaves; %d notices accepted, %d rejected submissions, %d withdrawn\n\n",
		r.At, r.Leaves, r.Accepted, r.Rejected, r.Withdrawn)
	if r.DeadLettered > 0 {
		fmt.Fprintf(w, "deliveries dead-lettered (every kind): %d\n\n", r.DeadLettered)
	}
	if r.FollowedUp+r.Superseded > 0 {
		fmt.Fprintf(w, "links of later notices: %d follow-ups, %d superseded\n\n", r.FollowedUp, r.Superseded)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AUTHORITY\tPRIORITY\tQUEUED\tDELIVERED\tACKED\tWITHDRAWN\tESCALATED\tLATE\tOVERDUE\tDEAD-LETTERED\tTO QUEUED (MEDIAN / P95)\tTO DELIVERED\tTO ACKED")
	d := func(x Durations) string {
		if x.Count == 0 {
			return "-"
		}
		return human(x.Median) + " / " + human(x.P95)
	}
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", row.Authority, row.Priority, row.Queued, row.Delivered,
			row.Acknowledged, row.Withdrawn, row.Escalated, row.Late, row.Overdue, row.DeadLettered,
			d(row.ToQueued), d(row.ToDelivered), d(row.ToAcknowledged))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Messages) > 0 {
		fmt.Fprintln(w, "\nmessages by kind:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  FROM\tKIND\tSENT\tDELIVERED\tACKED")
		for _, m := range r.Messages {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\n", m.From, m.Kind, m.Sent, m.Delivered, m.Acknowledged)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if a := r.Attachments; a != (AttachmentCount{}) {
		fmt.Fprintf(w, "\nattachments: %d added; deliveries %d queued, %d delivered, %d acknowledged\n",
			a.Added, a.Queued, a.Delivered, a.Acknowledged)
	}
	fmt.Fprintf(w, "\nnotice bodies expired: %d of %d\n", len(r.Expired), r.Accepted)
	for i, e := range r.Expired {
		if i == 50 {
			fmt.Fprintf(w, "  ... and %d more (--json lists all)\n", len(r.Expired)-i)
			break
		}
		fmt.Fprintf(w, "  %s  accepted %s  (%s)\n", e.Notice, e.AcceptedAt, e.Why)
	}
	return nil
}

func human(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
