package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/noticerelay/noticerelay/pkg/web"
	"github.com/noticerelay/noticerelay/services/station"
)

// stationCmd runs a receiving station until ctx is cancelled.
func stationCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("station", stderr)
	cfgPath := fs.String("config", "", "the station's configuration file (required; see docs/station.md)")
	ca := fs.String("ca", "", "trust only the CA certificates in this PEM file for the relay (overrides relay.ca)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "noticerelay station: --config is required")
		return ExitUsage
	}
	cfg, err := station.LoadConfig(*cfgPath)
	if err != nil {
		return configError(stderr, err)
	}
	if *ca != "" {
		if err := cfg.UseCA(*ca); err != nil {
			fmt.Fprintf(stderr, "noticerelay station: --ca: %v\n", err)
			return ExitUsage
		}
	}
	log := logger(stderr, false)
	defer log.Sync() //nolint:errcheck // nothing to do about a failed log flush
	s, err := station.Start(ctx, station.Options{Config: cfg, Log: log})
	if err != nil {
		log.Error("start failed", zap.Error(err))
		return ExitFailure
	}
	scheme := "http"
	if cfg.TLS() {
		scheme = "https"
	}
	name := cfg.Authority
	if name == "" {
		name = "the authority of " + cfg.Relay.TokenEnv + " at " + cfg.Relay.URL
	}
	fmt.Fprintf(stdout, "noticerelay station: %s, listening on %s://%s\n", name, scheme, s.Addr())
	code := ExitOK
	select {
	case <-ctx.Done():
	case err := <-s.Served():
		log.Error("http server stopped", zap.Error(err))
		code = ExitFailure
	}
	if err := s.Close(); err != nil {
		log.Error("shutdown", zap.Error(err))
		code = ExitFailure
	}
	return code
}

// passwd prints the argon2id hash of a password: typed twice at a
// terminal, or read once from standard input.
func passwd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("passwd", stderr)
	if code := parse(fs, args); code >= 0 {
		return code
	}
	var pw string
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		read := func(prompt string) (string, error) {
			fmt.Fprint(stderr, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			return string(b), err
		}
		first, err := read("Password: ")
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay passwd: %v\n", err)
			return ExitFailure
		}
		again, err := read("Again: ")
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay passwd: %v\n", err)
			return ExitFailure
		}
		if first != again {
			fmt.Fprintln(stderr, "noticerelay passwd: the two passwords differ")
			return ExitFailure
		}
		pw = first
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			fmt.Fprintf(stderr, "noticerelay passwd: %v\n", err)
			return ExitFailure
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if len(pw) < 12 {
		fmt.Fprintln(stderr, "noticerelay passwd: use at least 12 characters")
		return ExitUsage
	}
	h, err := web.HashPassword(pw)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay passwd: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintln(stdout, h)
	return ExitOK
}
