package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/natsauth"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

const deliveriesUsage = `noticerelay deliveries: dead letters and NATS permissions.

  noticerelay deliveries dead    (--nats URL [--creds FILE] | --config FILE) [--all]
  noticerelay deliveries redrive (--nats URL [--creds FILE] | --config FILE) (--id ID | --all)
  noticerelay deliveries nats-config [--config FILE]

dead lists the dead letters not yet sent again (--all: every one), one JSON
object a line. redrive puts dead deliveries back into their authority's
queue (same delivery id, fresh retry budget); --id takes a delivery id or a
dead letter's sequence number. nats-config prints a nats-server
configuration with one least-privilege user per authority and per service
(the demo authorities without --config).
`

func deliveriesCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, deliveriesUsage)
		return ExitUsage
	}
	switch args[0] {
	case "dead", "redrive":
		return deadCmd(ctx, args[0], args[1:], stdout, stderr)
	case "nats-config":
		fs := newFlags("deliveries nats-config", stderr)
		cfgPath := fs.String("config", "", "configuration file (default: the demo authorities)")
		if code := parse(fs, args[1:]); code >= 0 {
			return code
		}
		var ids []string
		if *cfgPath != "" {
			c, err := config.Load(*cfgPath, config.Options{AllowPlainTokens: true})
			if err != nil {
				return configError(stderr, err)
			}
			for _, a := range c.Authorities {
				ids = append(ids, a.ID)
			}
		} else {
			ids = DemoAuthorityIDs()
		}
		fmt.Fprint(stdout, natsauth.Render(ids))
		return ExitOK
	}
	fmt.Fprint(stderr, deliveriesUsage)
	return ExitUsage
}

// DemoAuthorityIDs are the authority ids of `dev`'s demo configuration,
// sorted.
func DemoAuthorityIDs() []string {
	ccs := append(append([]string{}, country.EU27...), country.Europol)
	ids := make([]string, len(ccs))
	for i, cc := range ccs {
		ids[i] = config.DemoAuthority(cc)
	}
	sort.Strings(ids)
	return ids
}

// DeadLetter is one line of `deliveries dead`.
type DeadLetter struct {
	Sequence  uint64 `json:"seq"`
	At        string `json:"at"`
	Consumer  string `json:"consumer"`
	Stream    string `json:"stream"`
	Subject   string `json:"subject"`
	Delivery  string `json:"delivery,omitempty"`
	Authority string `json:"authority,omitempty"`
	Priority  string `json:"priority,omitempty"`
	Attempts  string `json:"attempts"`
	Reason    string `json:"reason"`
	Redriven  bool   `json:"redriven"`
	data      []byte
}

// redriveSubject is where a dead delivery goes back into its queue.
func (d *DeadLetter) redriveSubject() string {
	return stream.RedriveSubject(d.Authority, d.Priority, d.Delivery, d.Sequence)
}

func deadCmd(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("deliveries "+name, stderr)
	natsURL := fs.String("nats", "", "NATS URL of the relay's server")
	creds := fs.String("creds", "", "a NATS .creds file, or a file holding user:password")
	cfgPath := fs.String("config", "", "relay configuration (nats.url, nats.creds; nats.listen for dev)")
	all := fs.Bool("all", false, "dead: list redriven ones too; redrive: every dead delivery")
	id := fs.String("id", "", "redrive: a delivery id or dead-letter sequence number")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if name == "redrive" && (*id == "") == !*all {
		fmt.Fprintln(stderr, "noticerelay deliveries redrive: give --id ID or --all")
		return ExitUsage
	}
	url := *natsURL
	var opts []nats.Option
	if *creds != "" {
		o, err := natsAuth(*creds)
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay deliveries: %v\n", err)
			return ExitUsage
		}
		opts = append(opts, o)
	}
	if *cfgPath != "" {
		c, err := config.Load(*cfgPath, config.Options{AllowPlainTokens: true})
		if err != nil {
			return configError(stderr, err)
		}
		if url == "" {
			url = c.NATS.URL
			if c.NATS.Listen != "" {
				url = "nats://" + c.NATS.Listen
			}
		}
		if c.NATS.Creds != "" && *creds == "" {
			opts = append(opts, nats.UserCredentials(c.NATS.Creds))
		}
	}
	if url == "" {
		fmt.Fprintln(stderr, "noticerelay deliveries: give --nats URL or --config FILE")
		return ExitUsage
	}
	nc, err := nats.Connect(url, append(opts, nats.Name("noticerelay deliveries"))...)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay deliveries: connecting to %s: %v\n", url, err)
		return ExitFailure
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay deliveries: %v\n", err)
		return ExitFailure
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	dead, err := listDead(ctx, js)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay deliveries: %v\n", err)
		return ExitFailure
	}
	enc := json.NewEncoder(stdout)
	if name == "dead" {
		for _, d := range dead {
			if *all || !d.Redriven {
				_ = enc.Encode(d)
			}
		}
		return ExitOK
	}
	code, found := ExitOK, false
	for _, d := range dead {
		if *id != "" && *id != d.Delivery && *id != strconv.FormatUint(d.Sequence, 10) {
			continue
		}
		if *all && d.Redriven {
			continue
		}
		found = true
		if d.Delivery == "" {
			fmt.Fprintf(stderr, "dead letter %d (%s on %s) is not a delivery: fix its cause; the original stays at %s %s\n",
				d.Sequence, d.Consumer, d.Stream, d.Stream, d.Subject)
			code = ExitFailure
			continue
		}
		subj := d.redriveSubject()
		_, err := stream.Publish(ctx, js, stream.Message{Subject: subj, ID: subj, Data: d.data})
		switch {
		case err == nil:
			fmt.Fprintf(stdout, "redriven %s (dead letter %d) to %s\n", d.Delivery, d.Sequence, d.Authority)
		case fault.Is(err, fault.Exists):
			fmt.Fprintf(stdout, "already redriven %s (dead letter %d)\n", d.Delivery, d.Sequence)
		default:
			fmt.Fprintf(stderr, "redrive %s: %v\n", d.Delivery, err)
			code = ExitFailure
		}
	}
	if *id != "" && !found {
		fmt.Fprintf(stderr, "noticerelay deliveries redrive: no dead letter %q\n", *id)
		return ExitFailure
	}
	return code
}

// listDead reads every dead letter, oldest first.
func listDead(ctx context.Context, js jetstream.JetStream) ([]*DeadLetter, error) {
	ds, err := js.Stream(ctx, stream.Dead)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.Dead, err)
	}
	deliveries, err := js.Stream(ctx, stream.Deliveries)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.Deliveries, err)
	}
	info, err := ds.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.Dead, err)
	}
	var out []*DeadLetter
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := ds.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		d := &DeadLetter{Sequence: seq, At: m.Header.Get(stream.HeaderDeadAt), Consumer: m.Header.Get(stream.HeaderDeadConsumer),
			Stream: m.Header.Get(stream.HeaderDeadStream), Subject: m.Header.Get(stream.HeaderDeadSubject),
			Attempts: m.Header.Get(stream.HeaderDeadAttempts), Reason: m.Header.Get(stream.HeaderDeadReason), data: m.Data}
		if a, p, id, ok := stream.ParseDeliverySubject(d.Subject); d.Stream == stream.Deliveries && ok {
			d.Authority, d.Priority, d.Delivery = a, p, id
			_, err := stream.Get(ctx, deliveries, d.redriveSubject())
			d.Redriven = err == nil
		}
		out = append(out, d)
	}
	return out, nil
}
