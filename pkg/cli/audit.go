package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/term"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/relay"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

const auditUsage = `noticerelay audit: the tamper-evident log, for auditors.

Commands:
  keygen --origin ORIGIN --out DIR                 make the signing and pseudonym keys; print the verifier key
  verify [--nats URL | --from DIR] --config FILE   replay the whole log and check it: one verdict line
  export --out DIR [--nats URL] --config FILE      write the leaves and checkpoints for offline verification
  replay [--nats URL | --from DIR] [--at TIME] [--urgent-deadline D] [--json | --csv] --config FILE
                                                   each notice's lifecycle: counts and times per authority
  report --out FILE [--nats URL | --from DIR] [--since TIME] [--until TIME] [--urgent-deadline D] --config FILE
                                                   verify the log and write the auditors' HTML report
  prove --notice ID --out DIR [--nats URL | --from DIR] --config FILE
                                                   one C2SP tlog-proof file per leaf of a notice
  verify-proof FILE [--leaf FILE] --config FILE    check one proof offline against its signed checkpoint

--config gives the keys (audit.verifier_key, audit.pseudonym_key), nats.url and retention;
--verifier-key, --pseudonym-key and --nats override it. Exit status: 0 success (intact),
1 failure (not intact, or the log could not be read), 2 bad usage or configuration.
`

// audit runs `noticerelay audit ...`.
func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, "noticerelay audit", auditUsage, map[string]command{
		"keygen": offline(auditKeygen), "verify": auditVerify, "export": auditExport, "replay": auditReplay,
		"report": auditReport, "prove": auditProve, "verify-proof": offline(auditVerifyProof),
	}, args, stdout, stderr)
}

func auditKeygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit keygen", stderr)
	origin := fs.String("origin", "", "the log's origin, e.g. relay.example.org/audit (required)")
	out := fs.String("out", "", "folder for the key files (required)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if *origin == "" || *out == "" {
		fmt.Fprintln(stderr, "noticerelay audit keygen: --origin and --out are required")
		return ExitUsage
	}
	skey, vkey, err := auditlog.GenerateKeys(*out, *origin)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit keygen: %v\n", err)
		return ExitFailure
	}
	pkey := filepath.Join(*out, auditlog.PseudonymKeyFile)
	if err := relay.WritePseudonymKey(pkey); err != nil {
		fmt.Fprintf(stderr, "noticerelay audit keygen: %s: %v\n", pkey, err)
		return ExitFailure
	}
	fmt.Fprintf(stdout, "%s\n\n# configuration:\naudit:\n  origin: %s\n  signing_key: %s\n  verifier_key: %q\n  pseudonym_key: %s\n",
		vkey, *origin, skey, vkey, pkey)
	return ExitOK
}

// auditEnv is what the audit commands share: configuration, keys, and where
// the log is read from.
type auditEnv struct {
	cfg       *config.Config
	natsURL   string
	from      string
	verifier  note.Verifier
	pseudoKey []byte
	stderr    io.Writer
	nc        *nats.Conn
	js        jetstream.JetStream
}

// auditFlags registers the flags most audit commands share.
type auditFlags struct {
	config, nats, from, vkey, pkey *string
}

func sharedAuditFlags(fs *flag.FlagSet, from bool) auditFlags {
	f := auditFlags{
		config: fs.String("config", "", "relay configuration: audit keys, nats.url, retention"),
		nats:   fs.String("nats", "", "NATS URL of the relay (default: nats.url of --config)"),
		vkey:   fs.String("verifier-key", "", "signed-note verifier key of the checkpoints (default: audit.verifier_key)"),
		pkey:   fs.String("pseudonym-key", "", "pseudonym key file (default: audit.pseudonym_key)"),
	}
	if from {
		f.from = fs.String("from", "", "read an export folder instead of NATS")
	} else {
		f.from = new(string)
	}
	return f
}

// load builds the environment; it returns an exit status >= 0 on failure.
func (f auditFlags) load(name string, stderr io.Writer, needVerifier bool) (*auditEnv, int) {
	e := &auditEnv{stderr: stderr, from: *f.from}
	if *f.nats != "" && *f.from != "" {
		fmt.Fprintf(stderr, "noticerelay %s: give --nats or --from, not both\n", name)
		return nil, ExitUsage
	}
	if *f.config != "" {
		c, err := config.Load(*f.config, config.Options{AllowPlainTokens: true})
		if err != nil {
			return nil, configError(stderr, err)
		}
		e.cfg = c
	} else {
		c, err := config.Normalize(&config.Config{})
		if err != nil {
			return nil, configError(stderr, err)
		}
		e.cfg = c
	}
	e.natsURL = e.cfg.NATS.URL
	if *f.nats != "" {
		e.natsURL = *f.nats
	}
	vkey := e.cfg.Audit.VerifierKey
	if *f.vkey != "" {
		vkey = *f.vkey
	}
	if vkey == "" && e.cfg.Audit.SigningKey != "" {
		if skey, err := os.ReadFile(e.cfg.Audit.SigningKey); err == nil {
			vkey, _ = auditlog.VerifierKey(string(skey))
		}
	}
	if vkey != "" {
		v, err := auditlog.NewVerifier(vkey)
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay %s: verifier key: %v\n", name, err)
			return nil, ExitUsage
		}
		e.verifier = v
	} else if needVerifier {
		fmt.Fprintf(stderr, "noticerelay %s: no verifier key: set audit.verifier_key in --config, or --verifier-key\n", name)
		return nil, ExitUsage
	}
	pkey := e.cfg.Audit.PseudonymKey
	if *f.pkey != "" {
		pkey = *f.pkey
	}
	if pkey != "" {
		k, err := relay.ReadPseudonymKey(pkey)
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay %s: %v\n", name, err)
			return nil, ExitUsage
		}
		e.pseudoKey = k
	}
	return e, -1
}

// connect opens the NATS connection unless the log is read from a folder.
func (e *auditEnv) connect() error {
	if e.from != "" {
		return nil
	}
	opts := []nats.Option{nats.Name("noticerelay audit")}
	if e.cfg.NATS.Creds != "" {
		opts = append(opts, nats.UserCredentials(e.cfg.NATS.Creds))
	}
	nc, err := nats.Connect(e.natsURL, opts...)
	if err != nil {
		return fmt.Errorf("connecting to NATS at %s: %w", e.natsURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("jetstream: %w", err)
	}
	e.nc, e.js = nc, js
	return nil
}

func (e *auditEnv) close() {
	if e.nc != nil {
		e.nc.Close()
	}
}

// leaves is where the log is read from.
func (e *auditEnv) leaves() auditlog.Leaves {
	if e.from != "" {
		return auditlog.Export{Dir: e.from}
	}
	return auditlog.StreamLeaves{JS: e.js}
}

// checkpoints reads the stored checkpoints.
func (e *auditEnv) checkpoints(ctx context.Context) ([]auditlog.StoredCheckpoint, error) {
	if e.from != "" {
		return auditlog.Export{Dir: e.from}.Checkpoints()
	}
	return auditlog.ReadCheckpoints(ctx, e.js)
}

// requestCheckpoint asks the audit service for a checkpoint of the whole
// log, so that what is read next is signed up to its end.
func (e *auditEnv) requestCheckpoint(ctx context.Context) {
	if e.nc == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	m, err := e.nc.RequestWithContext(rctx, auditlog.RequestSubject, nil)
	if err == nil && m.Header.Get("Nr-Error") != "" {
		err = errors.New(m.Header.Get("Nr-Error"))
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "note: no fresh checkpoint (%v): the newest leaves may not be signed yet\n", err)
	}
}

// pseudonym returns the pseudonym of a notice id (or the pseudonym given).
func (e *auditEnv) pseudonym(ctx context.Context, id string) (string, error) {
	if pseudonymPattern.MatchString(id) {
		return id, nil
	}
	ps, err := e.pseudonyms(ctx)
	if err != nil {
		return "", err
	}
	return ps.Notice(id), nil
}

var pseudonymPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// pseudonyms returns the relay's pseudonyms: the configured key, or the
// key the relay keeps in NATS when no key file is configured.
func (e *auditEnv) pseudonyms(ctx context.Context) (*event.Pseudonyms, error) {
	key := e.pseudoKey
	if key == nil && e.js != nil {
		var err error
		if key, err = relay.StoredPseudonymKey(ctx, e.js); err != nil && !fault.Is(err, fault.NotFound) {
			// NATS did not answer: not a missing key.
			return nil, fmt.Errorf("reading the pseudonym key from NATS: %w", err)
		}
	}
	if key == nil {
		return nil, errors.New("naming notices by id needs the pseudonym key: audit.pseudonym_key in --config, or --pseudonym-key")
	}
	return event.NewPseudonyms(key), nil
}

// progress returns a function that shows progress on a terminal, and a
// function that clears the line; both do nothing when stderr is not one.
func progress(stderr io.Writer, what string) (func(uint64), func()) {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	start := time.Now()
	return func(n uint64) {
			fmt.Fprintf(f, "\r%s: %d leaves (%.0f/s)   ", what, n, float64(n)/max(time.Since(start).Seconds(), 1e-3))
		}, func() {
			fmt.Fprint(f, "\r\033[K")
		}
}

func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit verify", stderr)
	f := sharedAuditFlags(fs, true)
	if code := parse(fs, args); code >= 0 {
		return code
	}
	e, code := f.load("audit verify", stderr, true)
	if code >= 0 {
		return code
	}
	if err := e.connect(); err != nil {
		fmt.Fprintf(stderr, "noticerelay audit verify: %v\n", err)
		return ExitFailure
	}
	defer e.close()
	cps, err := e.checkpoints(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit verify: %v\n", err)
		return ExitFailure
	}
	show, done := progress(stderr, "verifying")
	o := auditlog.VerifyOptions{Verifier: e.verifier, Progress: show}
	if e.from != "" {
		o.LeafHashes = auditlog.Export{Dir: e.from}.LeafHashes()
	}
	res, err := auditlog.Verify(ctx, e.leaves(), cps, o)
	done()
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit verify: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintln(stdout, res.Verdict())
	if res.Problem != nil {
		return ExitFailure
	}
	return ExitOK
}

func auditExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit export", stderr)
	f := sharedAuditFlags(fs, false)
	out := fs.String("out", "", "folder to write the export to (required)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "noticerelay audit export: --out is required")
		return ExitUsage
	}
	e, code := f.load("audit export", stderr, false)
	if code >= 0 {
		return code
	}
	if err := e.connect(); err != nil {
		fmt.Fprintf(stderr, "noticerelay audit export: %v\n", err)
		return ExitFailure
	}
	defer e.close()
	e.requestCheckpoint(ctx)
	origin := ""
	if e.verifier != nil {
		origin = e.verifier.Name()
	}
	show, done := progress(stderr, "exporting")
	n, err := auditlog.ExportStream(ctx, e.js, *out, origin, show)
	done()
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit export: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintf(stdout, "exported %d leaves to %s\n", n, *out)
	return ExitOK
}

func auditReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit replay", stderr)
	f := sharedAuditFlags(fs, true)
	at := fs.String("at", "", "the moment to rebuild the state of (RFC 3339; default now)")
	asJSON := fs.Bool("json", false, "print JSON")
	asCSV := fs.Bool("csv", false, "print the statistics as CSV")
	deadline := fs.Duration("urgent-deadline", 0, "how long an urgent delivery may stay unacknowledged (default: deliveries.urgent_deadline of --config)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if *asJSON && *asCSV {
		fmt.Fprintln(stderr, "noticerelay audit replay: give --json or --csv, not both")
		return ExitUsage
	}
	when, ok := timeFlag(stderr, "audit replay", "at", *at, time.Now())
	if !ok {
		return ExitUsage
	}
	e, code := f.load("audit replay", stderr, false)
	if code >= 0 {
		return code
	}
	if err := e.connect(); err != nil {
		fmt.Fprintf(stderr, "noticerelay audit replay: %v\n", err)
		return ExitFailure
	}
	defer e.close()
	if *deadline <= 0 {
		*deadline = time.Duration(e.cfg.Deliveries.UrgentDeadline)
	}
	show, done := progress(stderr, "replaying")
	o := auditlog.ReplayOptions{At: when, Retention: time.Duration(e.cfg.Retention.Notices), UrgentDeadline: *deadline, Progress: show}
	if e.js != nil {
		gone, err := e.bodiesGone(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "note: %v; bodies are judged by retention only\n", err)
		}
		o.BodyGone = gone
	}
	rep, err := auditlog.RunReplay(ctx, e.leaves(), o)
	done()
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit replay: %v\n", err)
		return ExitFailure
	}
	switch {
	case *asJSON:
		err = rep.WriteJSON(stdout)
	case *asCSV:
		err = rep.WriteCSV(stdout)
	default:
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit replay: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// timeFlag parses an RFC 3339 flag value; empty gives def.
func timeFlag(stderr io.Writer, cmd, name, value string, def time.Time) (time.Time, bool) {
	if value == "" {
		return def, true
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay %s: --%s: %q is not an RFC 3339 time such as 2026-11-20T14:03:00Z\n", cmd, name, value)
		return time.Time{}, false
	}
	return t, true
}

func auditReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit report", stderr)
	f := sharedAuditFlags(fs, true)
	since := fs.String("since", "", "leave out notices accepted before this moment (RFC 3339; default: the first leaf)")
	until := fs.String("until", "", "the report's end: events after it are left out (RFC 3339; default now)")
	out := fs.String("out", "", "the HTML file to write (required)")
	deadline := fs.Duration("urgent-deadline", 0, "how long an urgent delivery may stay unacknowledged (default: deliveries.urgent_deadline of --config)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "noticerelay audit report: --out is required")
		return ExitUsage
	}
	now := time.Now()
	from, ok := timeFlag(stderr, "audit report", "since", *since, time.Time{})
	if !ok {
		return ExitUsage
	}
	to, ok := timeFlag(stderr, "audit report", "until", *until, now)
	if !ok {
		return ExitUsage
	}
	e, code := f.load("audit report", stderr, true)
	if code >= 0 {
		return code
	}
	if err := e.connect(); err != nil {
		fmt.Fprintf(stderr, "noticerelay audit report: %v\n", err)
		return ExitFailure
	}
	defer e.close()
	e.requestCheckpoint(ctx)
	cps, err := e.checkpoints(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit report: %v\n", err)
		return ExitFailure
	}
	if *deadline <= 0 {
		*deadline = time.Duration(e.cfg.Deliveries.UrgentDeadline)
	}
	show, done := progress(stderr, "verifying and replaying")
	o := auditlog.ReportOptions{Now: now,
		Verify: auditlog.VerifyOptions{Verifier: e.verifier, Progress: show},
		Replay: auditlog.ReplayOptions{At: to, Since: from, UrgentDeadline: *deadline}}
	if e.from != "" {
		o.Verify.LeafHashes = auditlog.Export{Dir: e.from}.LeafHashes()
	}
	rep, err := auditlog.BuildReport(ctx, e.leaves(), cps, o)
	done()
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit report: %v\n", err)
		return ExitFailure
	}
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		fmt.Fprintf(stderr, "noticerelay audit report: %v\n", err)
		return ExitFailure
	}
	if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		fmt.Fprintf(stderr, "noticerelay audit report: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintln(stdout, rep.Verification.Verdict())
	fmt.Fprintf(stdout, "report written to %s\n", *out)
	if rep.Verification.Problem != nil {
		return ExitFailure
	}
	return ExitOK
}

// bodiesGone says which notices' bodies are no longer in the notice
// stream: it needs the pseudonym key to name the stored bodies' notices.
func (e *auditEnv) bodiesGone(ctx context.Context) (func(string) bool, error) {
	ps, err := e.pseudonyms(ctx)
	if err != nil {
		return nil, err
	}
	s, err := e.js.Stream(ctx, stream.Notices)
	if err != nil {
		return nil, fmt.Errorf("notice stream: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(stream.NoticeSubject("*")))
	if err != nil {
		return nil, fmt.Errorf("notice stream: %w", err)
	}
	stored := map[string]bool{}
	for subj := range info.State.Subjects {
		id := strings.TrimPrefix(subj, stream.NoticeSubject(""))
		stored[ps.Notice(id)] = true
	}
	return func(p string) bool { return !stored[p] }, nil
}

func auditProve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit prove", stderr)
	f := sharedAuditFlags(fs, true)
	id := fs.String("notice", "", "the notice id (or its pseudonym) (required)")
	out := fs.String("out", "", "folder for the proof files (required)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if *id == "" || *out == "" {
		fmt.Fprintln(stderr, "noticerelay audit prove: --notice and --out are required")
		return ExitUsage
	}
	e, code := f.load("audit prove", stderr, true)
	if code >= 0 {
		return code
	}
	if err := e.connect(); err != nil {
		fmt.Fprintf(stderr, "noticerelay audit prove: %v\n", err)
		return ExitFailure
	}
	defer e.close()
	pseudonym, err := e.pseudonym(ctx, *id)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit prove: %v\n", err)
		return ExitUsage
	}
	e.requestCheckpoint(ctx)
	cps, err := e.checkpoints(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit prove: %v\n", err)
		return ExitFailure
	}
	show, done := progress(stderr, "reading the log")
	tree, leaves, err := auditlog.NoticeLeaves(ctx, e.leaves(), pseudonym, show)
	done()
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit prove: %v\n", err)
		return ExitFailure
	}
	if len(leaves) == 0 {
		fmt.Fprintf(stderr, "noticerelay audit prove: no leaf names notice %s (pseudonym %s)\n", *id, pseudonym)
		return ExitFailure
	}
	var last uint64
	for i := range leaves {
		last = max(last, i)
	}
	// The newest checkpoint that verifies and that the leaves read cover.
	var cp *auditlog.Checkpoint
	for k := len(cps) - 1; k >= 0 && cp == nil; k-- {
		c, err := auditlog.Open(cps[k].Note, e.verifier)
		if err == nil && c.Size <= tree.Size() {
			cp = c
		}
	}
	if cp == nil || cp.Size <= last {
		fmt.Fprintf(stderr, "noticerelay audit prove: no signed checkpoint covers leaf %d yet\n", last)
		return ExitFailure
	}
	if root, err := tree.RootAt(cp.Size); err != nil || !bytes.Equal(root, cp.Root) {
		fmt.Fprintf(stderr, "noticerelay audit prove: the log does not match its checkpoint of size %d: run audit verify\n", cp.Size)
		return ExitFailure
	}
	files, err := auditlog.WriteProofs(*out, tree, leaves, cp)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit prove: %v\n", err)
		return ExitFailure
	}
	for _, p := range files {
		fmt.Fprintln(stdout, p)
	}
	return ExitOK
}

func auditVerifyProof(args []string, stdout, stderr io.Writer) int {
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	fs := newFlags("audit verify-proof", stderr)
	f := sharedAuditFlags(fs, false)
	leafPath := fs.String("leaf", "", "the leaf's exact bytes (default: the .json file beside the proof)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if file == "" {
		fmt.Fprintln(stderr, "noticerelay audit verify-proof: the proof FILE is required")
		return ExitUsage
	}
	e, code := f.load("audit verify-proof", stderr, true)
	if code >= 0 {
		return code
	}
	if *leafPath == "" {
		*leafPath = auditlog.LeafFileOf(file)
	}
	pf, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit verify-proof: %v\n", err)
		return ExitFailure
	}
	leaf, err := os.ReadFile(*leafPath)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay audit verify-proof: %v\n", err)
		return ExitFailure
	}
	index, cp, err := auditlog.VerifyProofFile(pf, leaf, e.verifier)
	if err != nil {
		fmt.Fprintf(stdout, "proof INVALID: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintf(stdout, "proof valid: leaf %d (leaf hash %s) is in the log %s of size %d signed by %s\n",
		index, hex.EncodeToString(auditlog.LeafHash(leaf)), cp.Origin, cp.Size, e.verifier.Name())
	return ExitOK
}
