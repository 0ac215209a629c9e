// Package cli is the noticerelay command line: it parses commands and
// flags, loads configuration and runs the relay. Main returns the exit
// status: 0 success, 1 failure, 2 bad usage or configuration.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relay"
	"github.com/noticerelay/noticerelay/services/portal"
)

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

const usage = `noticerelay carries DSA Article 18 notices from platforms to the police.

Commands:
  dev   [--config FILE] [--data DIR]          everything in one process, with an embedded NATS server
  serve --config FILE [--services a,b,...]    services against an external NATS server or cluster
  token                                       make a bearer token and print its config digest
  init --dir DIR [--nats URL] [--listen ADDR] make, once, demo tokens and keys in DIR and a serve configuration (compose)
  explain --config FILE --platform ID NOTICE.json  print, as JSON, whom the relay would route a notice to and why
  audit                                       auditor tooling: keygen, verify, export, replay, prove, verify-proof
  inbox pull --out DIR (--url URL --token T | --nats URL --authority ID)  the police-side client
  deliveries dead|redrive|nats-config         dead letters, redrive, least-privilege NATS users
  station --config FILE [--ca FILE]           the receiving station: an authority's inbox in a browser
  passwd                                      print the argon2id hash of a password (station users)
  bench [--notices N] [--clients N | --rate R] load-generate through the real HTTP API and print one JSON line

Run "noticerelay COMMAND -h" for a command's flags.
`

// Main runs the command in args.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, "noticerelay", usage, map[string]command{
		"dev": dev, "serve": serve, "token": offline(token), "init": offline(initCmd), "explain": offline(explain),
		"audit": auditCmd, "inbox": inboxCmd, "deliveries": deliveriesCmd, "bench": bench, "station": stationCmd,
		"passwd": offline(func(args []string, stdout, stderr io.Writer) int { return passwd(args, os.Stdin, stdout, stderr) }),
	}, args, stdout, stderr)
}

// command runs one command of the command line with its arguments.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// offline is a command that does not wait on anything (no context).
func offline(f func(args []string, stdout, stderr io.Writer) int) command {
	return func(_ context.Context, args []string, stdout, stderr io.Writer) int { return f(args, stdout, stderr) }
}

// dispatch runs the command of cmds that args[0] names. Without one it
// prints usage: to stdout for help (-h, --help, help), else to stderr
// (exit status 2), saying which command prog does not know.
func dispatch(ctx context.Context, prog, usage string, cmds map[string]command, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	if cmd, ok := cmds[args[0]]; ok {
		return cmd(ctx, args[1:], stdout, stderr)
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", prog, args[0], usage)
	return ExitUsage
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("noticerelay "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags and refuses stray arguments.
func parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return ExitUsage
	}
	return -1
}

func logger(stderr io.Writer, dev bool) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder = zapcore.NewJSONEncoder(enc)
	if dev {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(stderr)), zapcore.InfoLevel))
}

func configError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "noticerelay: %v\n", err)
	return ExitUsage
}

func dev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dev", stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the built-in demo configuration)")
	data := fs.String("data", "./data", "data directory of the embedded NATS server")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	var cfg *config.Config
	if *cfgPath != "" {
		c, err := config.Load(*cfgPath, config.Options{AllowPlainTokens: true})
		if err != nil {
			return configError(stderr, err)
		}
		cfg = c
	} else {
		c, tokens, err := config.Demo(*data)
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay: %v\n", err)
			return ExitFailure
		}
		cfg = c
		stationKey, err := sealDemoStation(*data, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay: %v\n", err)
			return ExitFailure
		}
		printDemo(stdout, cfg, tokens, *data)
		return run(ctx, relay.Options{Config: cfg, Embedded: true, DataDir: *data, Log: logger(stderr, true)}, stdout, stderr,
			func(r *relay.Relay) error {
				path := filepath.Join(*data, config.DemoConfigFile)
				c := *r.Config()
				if c.Audit.PseudonymKey == "" {
					c.Audit.PseudonymKey = filepath.Join(*data, "keys", "pseudonym.key")
				}
				for _, p := range []*string{&c.Audit.SigningKey, &c.Audit.PseudonymKey} {
					if abs, err := filepath.Abs(*p); err == nil && *p != "" {
						*p = abs
					}
				}
				if err := config.WriteYAML(path, &c); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "noticerelay dev: NATS on nats://%s; configuration for the tools in %s\n"+
					"  e.g. noticerelay audit verify --config %s\n", config.DemoNATSListen, path, path)
				stationCfg, err := writeDemoStation(*data, "http://"+r.Addr(), stationKey, tokens["NR_STATION_PASSWORD"])
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "noticerelay dev: a receiving station for %s (deliveries sealed to %s):\n"+
					"  . %s && noticerelay station --config %s   # then http://%s, user duty1 or lead, password $NR_STATION_PASSWORD\n",
					config.DemoAuthority(demoStationCountry), stationKey, filepath.Join(*data, config.DemoTokensFile), stationCfg, demoStationListen)
				return nil
			})
	}
	return run(ctx, relay.Options{Config: cfg, Embedded: true, DataDir: *data, Log: logger(stderr, true)}, stdout, stderr)
}

func printDemo(w io.Writer, c *config.Config, tokens map[string]string, data string) {
	fmt.Fprintf(w, "noticerelay dev: demo configuration (tokens kept in %s/%s)\n", data, config.DemoTokensFile)
	fmt.Fprintf(w, "  platform  %-12s %s\n", config.DemoPlatform, tokens["NR_PLATFORM_TOKEN"])
	fmt.Fprintf(w, "  auditor   %-12s %s\n", config.DemoAuditor, tokens["NR_AUDITOR_TOKEN"])
	var lines []string
	for _, a := range c.Authorities {
		lines = append(lines, fmt.Sprintf("  authority %-12s %-2s %s", a.ID, a.Country, tokens["NR_TOKEN_"+a.Country]))
	}
	sort.Strings(lines)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", stderr)
	cfgPath := fs.String("config", "", "configuration file (required)")
	services := fs.String("services", "", "comma-separated services to run (default all: "+strings.Join(relay.ServiceNames(), ",")+")")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "noticerelay serve: --config is required")
		return ExitUsage
	}
	cfg, err := config.Load(*cfgPath, config.Options{})
	if err != nil {
		return configError(stderr, err)
	}
	var names []string
	if *services != "" {
		known := relay.ServiceNames()
		for _, n := range strings.Split(*services, ",") {
			n = strings.TrimSpace(n)
			if !slices.Contains(known, n) {
				fmt.Fprintf(stderr, "noticerelay serve: --services: unknown service %q; known: %s\n", n, strings.Join(known, ", "))
				return ExitUsage
			}
			names = append(names, n)
		}
	}
	return run(ctx, relay.Options{Config: cfg, Services: names, Log: logger(stderr, false)}, stdout, stderr)
}

// run starts the relay and keeps it up until ctx is cancelled.
func run(ctx context.Context, o relay.Options, stdout, stderr io.Writer, started ...func(*relay.Relay) error) int {
	defer o.Log.Sync() //nolint:errcheck // nothing to do about a failed log flush
	r, err := relay.Start(ctx, o)
	if err != nil {
		o.Log.Error("start failed", zap.Error(err))
		return ExitFailure
	}
	for _, f := range started {
		if err := f(r); err != nil {
			o.Log.Error("start failed", zap.Error(err))
			_ = r.Close()
			return ExitFailure
		}
	}
	fmt.Fprintf(stdout, "noticerelay: listening on %s\n", r.URL())
	if len(o.Services) == 0 || slices.Contains(o.Services, portal.Name) {
		fmt.Fprintf(stdout, "noticerelay: the platforms' portal is %s%s/ (sign in with a platform token)\n", r.URL(), portal.Base)
	}
	code := ExitOK
	select {
	case <-ctx.Done():
	case err := <-r.Served():
		o.Log.Error("http server stopped", zap.Error(err))
		code = ExitFailure
	}
	o.Log.Info("shutting down")
	if err := r.Close(); err != nil {
		o.Log.Error("shutdown", zap.Error(err))
		code = ExitFailure
	}
	return code
}

func token(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("token", stderr)
	if code := parse(fs, args); code >= 0 {
		return code
	}
	t := config.NewToken()
	fmt.Fprintf(stdout, "token:  %s\ndigest: %s\n", t, config.Digest(t))
	return ExitOK
}
