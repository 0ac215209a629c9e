package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/durable"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/inboxclient"
	"github.com/noticerelay/noticerelay/pkg/natsauth"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

const inboxUsage = `noticerelay inbox pull: the police-side client.

  noticerelay inbox pull --url URL --token TOKEN [--ca FILE] [--identity AGE_KEY_FILE] --out DIR [--once]
  noticerelay inbox pull --nats URL --creds FILE --authority ID [--url URL --token TOKEN] [--identity AGE_KEY_FILE] --out DIR [--once]

Fetches deliveries (urgent first), decrypts them with the identity when
they are sealed, writes each as DIR/<delivery id>.json (written to a temporary
file, fsynced, renamed, directory fsynced), and only then acknowledges it.
An attachment's file is fetched over --url, decrypted, checked against its
SHA-256 and written first, as DIR/<delivery id>.<extension>; the file of a
withdrawn notice is refused by the relay (410): the delivery is then written
with "withdrawn": true and no file, and acknowledged.
With --once it stops when the queue is empty; otherwise it polls.
--url must be https:// (http:// only to a loopback address); --ca trusts
only the CA certificates in FILE (PEM) instead of the system's.
`

func inboxCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "pull" {
		fmt.Fprint(stderr, inboxUsage)
		return ExitUsage
	}
	fs := newFlags("inbox pull", stderr)
	url := fs.String("url", "", "relay base URL (HTTP inbox): https://, or http:// to a loopback address")
	ca := fs.String("ca", "", "with --url: trust only the CA certificates in this PEM file (e.g. a self-signed relay's)")
	token := fs.String("token", os.Getenv("NR_TOKEN"), "the authority's bearer token (default $NR_TOKEN)")
	natsURL := fs.String("nats", "", "NATS URL, to consume the authority's durable consumers directly")
	creds := fs.String("creds", "", "with --nats: a NATS .creds file, or a file holding user:password")
	authority := fs.String("authority", "", "with --nats: the authority id (names its consumers)")
	identity := fs.String("identity", "", "age identity file that opens sealed deliveries")
	out := fs.String("out", "", "directory to write deliveries to (required)")
	once := fs.Bool("once", false, "stop when the queue is empty")
	perFetch := fs.Int("max", 100, "deliveries per fetch (1 to 100)")
	interval := fs.Duration("interval", 2*time.Second, "poll interval when the queue is empty")
	if code := parse(fs, args[1:]); code >= 0 {
		return code
	}
	switch {
	case *out == "":
		fmt.Fprintln(stderr, "noticerelay inbox pull: --out is required")
		return ExitUsage
	case *url == "" && *natsURL == "":
		fmt.Fprintln(stderr, "noticerelay inbox pull: give --url (with --token) or --nats (with --authority), or both (--nats for deliveries, --url for attachments' files)")
		return ExitUsage
	case *url != "" && *token == "":
		fmt.Fprintln(stderr, "noticerelay inbox pull: --token is required with --url")
		return ExitUsage
	case *natsURL != "" && *authority == "":
		fmt.Fprintln(stderr, "noticerelay inbox pull: --authority is required with --nats")
		return ExitUsage
	case *perFetch < 1 || *perFetch > 100:
		fmt.Fprintln(stderr, "noticerelay inbox pull: --max must be 1 to 100")
		return ExitUsage
	}
	var client *http.Client
	if *url != "" {
		var err error
		if *url, err = relayURL(*url); err != nil {
			fmt.Fprintf(stderr, "noticerelay inbox pull: --url %v\n", err)
			return ExitUsage
		}
		tlsConfig, err := caTLS(*ca)
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay inbox pull: --ca: %v\n", err)
			return ExitUsage
		}
		client = relayClient(tlsConfig, 60*time.Second)
	}
	p := &puller{out: *out, stdout: stdout, stderr: stderr}
	if *identity != "" {
		f, err := os.Open(*identity)
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay inbox pull: --identity: %v\n", err)
			return ExitUsage
		}
		p.identities, err = age.ParseIdentities(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay inbox pull: --identity: %v\n", err)
			return ExitUsage
		}
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		fmt.Fprintf(stderr, "noticerelay inbox pull: %v\n", err)
		return ExitFailure
	}
	var src source
	if *url != "" {
		hc := inboxclient.New(*url, *token, *perFetch, client)
		p.files = hc
		src = httpSource{hc}
	}
	if *natsURL != "" {
		ns, err := newNATSSource(ctx, *natsURL, *creds, *authority, *perFetch, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay inbox pull: %v\n", err)
			return ExitFailure
		}
		defer ns.close()
		src = ns
	}
	failed := false
	for {
		n, err := p.round(ctx, src)
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay inbox pull: %v\n", err)
			failed = true
		}
		if *once && (n == 0 || err != nil) {
			break
		}
		if n == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(*interval):
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	if failed {
		return ExitFailure
	}
	return ExitOK
}

// item is one fetched delivery, with what acknowledges it.
type item struct {
	out delivery.Out
	ack func(context.Context) error
}

// source is where deliveries come from: the HTTP inbox or NATS.
type source interface {
	fetch(ctx context.Context) ([]item, error)
	// ackAll acknowledges items already written, together when it can.
	ackAll(ctx context.Context, items []item) error
}

type puller struct {
	out            string
	identities     []age.Identity
	stdout, stderr io.Writer
	// files fetches attachments' bytes; nil without --url.
	files files
}

// round fetches once, writes every delivery it can, and acknowledges
// exactly those written. It returns how many it fetched.
func (p *puller) round(ctx context.Context, src source) (int, error) {
	items, err := src.fetch(ctx)
	if err != nil {
		return 0, err
	}
	var done []item
	var errs []error
	for _, it := range items {
		if err := p.write(ctx, it.out); err != nil {
			errs = append(errs, fmt.Errorf("delivery %s: %w (not acknowledged)", it.out.ID, err))
			continue
		}
		done = append(done, it)
		fmt.Fprintf(p.stdout, "%s %s %s\n", it.out.ID, it.out.Priority, it.out.Type)
	}
	if len(done) > 0 {
		if err := src.ackAll(ctx, done); err != nil {
			errs = append(errs, err)
		}
	}
	return len(items), errors.Join(errs...)
}

// Pulled is a delivery as the client writes it: the delivery with its
// notice (or, for type message, its message) in clear.
type Pulled struct {
	ID       string          `json:"id"`
	NoticeID string          `json:"notice_id"`
	Type     string          `json:"type"`
	Priority string          `json:"priority"`
	Notice   json.RawMessage `json:"notice,omitempty"`
	Message  json.RawMessage `json:"message,omitempty"`
	// Attachment describes the file of a delivery of type attachment;
	// File names where it was written, beside this delivery.
	Attachment json.RawMessage `json:"attachment,omitempty"`
	File       string          `json:"file,omitempty"`
	// Withdrawn says that the relay refused the file (410) because the
	// platform withdrew its notice: there is no File.
	Withdrawn bool `json:"withdrawn,omitempty"`
}

// write stores one delivery durably as DIR/<id>.json; for an attachment,
// its file first.
func (p *puller) write(ctx context.Context, o delivery.Out) error {
	if !notice.ValidID(o.ID) {
		return fmt.Errorf("not a delivery id: %q", o.ID)
	}
	body := o.Notice
	switch o.Type {
	case event.KindMessage:
		body = o.Message
	case event.KindAttachment:
		body = o.Attachment
	}
	if o.Ciphertext != "" {
		if len(p.identities) == 0 {
			return errors.New("the delivery is sealed: give --identity")
		}
		var err error
		if body, err = delivery.Open(o.Ciphertext, p.identities...); err != nil {
			return err
		}
	}
	pulled := Pulled{ID: o.ID, NoticeID: o.NoticeID, Type: o.Type, Priority: o.Priority, Notice: body}
	switch o.Type {
	case event.KindMessage:
		pulled.Notice, pulled.Message = nil, body
	case event.KindAttachment:
		pulled.Notice, pulled.Attachment = nil, body
		name, err := p.writeFile(ctx, o.ID, body, o.Ciphertext != "")
		if err != nil {
			return err
		}
		pulled.File, pulled.Withdrawn = name, name == ""
	}
	data, err := json.MarshalIndent(pulled, "", "  ")
	if err != nil {
		return err
	}
	return durable.Replace(filepath.Join(p.out, o.ID+".json"), append(data, '\n'), 0o600)
}

// httpSource is the relay's HTTP inbox.
type httpSource struct{ *inboxclient.Client }

func (h httpSource) fetch(ctx context.Context) ([]item, error) {
	outs, err := h.Fetch(ctx)
	if err != nil {
		return nil, err
	}
	items := make([]item, len(outs))
	for i, d := range outs {
		items[i] = item{out: d}
	}
	return items, nil
}

func (h httpSource) ackAll(ctx context.Context, items []item) error {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.out.ID
	}
	return h.AckAll(ctx, ids)
}

// natsSource consumes the authority's durable consumers directly, with a
// reply prefix of its own (the permissions allow no other).
type natsSource struct {
	nc        *nats.Conn
	consumers []jetstream.Consumer
	max       int
}

func natsAuth(creds string) (nats.Option, error) {
	data, err := os.ReadFile(creds)
	if err != nil {
		return nil, fmt.Errorf("--creds: %w", err)
	}
	if bytes.Contains(data, []byte("BEGIN NATS USER JWT")) {
		return nats.UserCredentials(creds), nil
	}
	user, pass, ok := strings.Cut(strings.TrimSpace(string(data)), ":")
	if !ok {
		return nil, fmt.Errorf("--creds: %s is neither a .creds file nor user:password", creds)
	}
	return nats.UserInfo(user, pass), nil
}

func newNATSSource(ctx context.Context, url, creds, authority string, perFetch int, stderr io.Writer) (*natsSource, error) {
	opts := []nats.Option{nats.Name("noticerelay-inbox-pull " + authority),
		nats.CustomInboxPrefix(natsauth.InboxPrefix(authority)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			fmt.Fprintf(stderr, "noticerelay inbox pull: nats: %v\n", err)
		})}
	if creds != "" {
		o, err := natsAuth(creds)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s := &natsSource{nc: nc, max: perFetch}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, p := range delivery.Priorities() {
		c, err := js.Consumer(cctx, stream.Deliveries, delivery.ConsumerName(authority, p))
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("consumer %s: %w", delivery.ConsumerName(authority, p), err)
		}
		s.consumers = append(s.consumers, c)
	}
	return s, nil
}

func (s *natsSource) close() { _ = s.nc.Drain() }

func (s *natsSource) fetch(context.Context) ([]item, error) {
	var items []item
	for _, c := range s.consumers { // urgent first
		if len(items) >= s.max {
			break
		}
		batch, err := c.FetchNoWait(s.max - len(items))
		if err != nil {
			return nil, err
		}
		for m := range batch.Messages() {
			d, err := delivery.Decode(m.Data())
			if err != nil {
				// Not ours to judge: leave it for the relay's redelivery.
				_ = m.Nak()
				return items, fmt.Errorf("unreadable delivery on %s: %w", m.Subject(), err)
			}
			items = append(items, item{out: d.Out(), ack: func(ctx context.Context) error { return m.DoubleAck(ctx) }})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return items, err
		}
	}
	return items, nil
}

func (s *natsSource) ackAll(ctx context.Context, items []item) error {
	var errs []error
	for _, it := range items {
		if err := it.ack(ctx); err != nil {
			errs = append(errs, fmt.Errorf("ack %s: %w", it.out.ID, err))
		}
	}
	return errors.Join(errs...)
}
