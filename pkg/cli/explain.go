package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/services/routing"
)

// Explanation is what `noticerelay explain` prints: the decision the relay
// would make for a notice, exactly as the routing service makes it and
// stores it in the notice's "decided" event, with whose notice it is.
type Explanation struct {
	Platform  string `json:"platform"`
	Reference string `json:"reference"`
	jurisdiction.Decision
	// IfEscalated are the recipients the relay adds to a follow-up or
	// correction, with their grounds, when an urgent earlier notice it
	// names was escalated before it is routed: the escalation targets of
	// the earlier recipients received that notice too.
	IfEscalated []jurisdiction.Recipient `json:"if_escalated,omitempty"`
}

// explain prints the decision for a notice without submitting it. Exit
// status: 0 with the decision on stdout; 1 when the notice is not valid
// (every problem on stderr, as intake would answer 400) or the geolocation
// database cannot be opened; 2 for bad usage, a bad configuration, an
// unknown platform or an unreadable file.
func explain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("explain", stderr)
	cfgPath := fs.String("config", "", "configuration file (required)")
	platform := fs.String("platform", "", "id of the submitting platform (required)")
	var earlierFiles fileList
	fs.Var(&earlierFiles, "earlier", "an earlier notice of the platform that the notice (or one before it) names in follow_up_of or supersedes; repeatable")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: noticerelay explain --config FILE --platform ID [--earlier EARLIER.json]... NOTICE.json  (- reads standard input)")
		fs.PrintDefaults()
	}
	file, code := explainArgs(fs, args)
	if code >= 0 {
		return code
	}
	if *cfgPath == "" || *platform == "" {
		fmt.Fprintln(stderr, "noticerelay explain: --config and --platform are required")
		return ExitUsage
	}
	// Any configuration the relay runs with, `dev`'s plain tokens included.
	cfg, err := config.Load(*cfgPath, config.Options{AllowPlainTokens: true})
	if err != nil {
		return configError(stderr, err)
	}
	if cfg.Platform(*platform) == nil {
		ids := make([]string, len(cfg.Platforms))
		for i, p := range cfg.Platforms {
			ids[i] = p.ID
		}
		fmt.Fprintf(stderr, "noticerelay explain: --platform: no platform %q in %s; known: %s\n", *platform, *cfgPath, strings.Join(ids, ", "))
		return ExitUsage
	}
	var body []byte
	if file == "-" {
		body, err = io.ReadAll(io.LimitReader(os.Stdin, notice.MaxBodyBytes+1))
	} else {
		body, err = os.ReadFile(file)
	}
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay explain: reading the notice: %v\n", err)
		return ExitUsage
	}
	n, errs := notice.Parse(body)
	if errs != nil {
		fmt.Fprintf(stderr, "noticerelay explain: %s is not a valid notice; the relay would refuse it (400) for %d problem(s):\n", file, len(errs))
		for _, e := range errs {
			field := e.Field
			if field == "" {
				field = "(body)"
			}
			fmt.Fprintf(stderr, "  %s: %s\n", field, e.Message)
		}
		return ExitFailure
	}
	router, err := routing.NewRouter(cfg, nil)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay explain: %v\n", err)
		return ExitFailure
	}
	earlier, err := readEarlier(earlierFiles)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay explain: %v\n", err)
		return ExitUsage
	}
	d, ifEscalated, missing := followUpDecision(n, earlier, func(n *notice.Notice) jurisdiction.Decision { return router.Decide(*platform, n) },
		func(d jurisdiction.Decision) jurisdiction.Decision {
			return router.WithEscalated(d, router.EscalationTargets(d)...)
		})
	for _, ref := range missing {
		fmt.Fprintf(stderr, "noticerelay explain: earlier notice %q not given (--earlier): the relay also sends this notice to its recipients, with basis follow_up\n", ref)
	}
	out, err := json.MarshalIndent(Explanation{Platform: *platform, Reference: n.Reference, Decision: d, IfEscalated: ifEscalated}, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay explain: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return ExitOK
}

// explainArgs parses the flags, before or after the one NOTICE.json
// argument. code is -1 to go on.
func explainArgs(fs *flag.FlagSet, args []string) (file string, code int) {
	parseFlags := func(a []string) int {
		if err := fs.Parse(a); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return ExitOK
			}
			return ExitUsage
		}
		return -1
	}
	if c := parseFlags(args); c >= 0 {
		return "", c
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(fs.Output(), "noticerelay explain: want one NOTICE.json argument (- for standard input)")
		return "", ExitUsage
	}
	file = fs.Arg(0)
	if c := parseFlags(fs.Args()[1:]); c >= 0 {
		return "", c
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "noticerelay explain: unexpected argument %q\n", fs.Arg(0))
		return "", ExitUsage
	}
	return file, -1
}
