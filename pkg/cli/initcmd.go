package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relay"
)

// InitConfigFile is the configuration `noticerelay init` writes into its
// folder, for `serve --config`.
const InitConfigFile = "config.yaml"

// initOrigin is the log origin of the audit keys `init` makes.
const initOrigin = "localhost/noticerelay-compose"

// initCmd runs `noticerelay init`: the first-start step of
// docker-compose.yml. A scratch image has no shell, so the relay binary
// itself makes the demo deployment's secrets: it creates whatever is
// missing in --dir (demo tokens, audit signing key, pseudonym key), writes
// the `serve` configuration naming them and prints the tokens as shell
// lines. Run again, it keeps the tokens and keys and prints the same.
func initCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("init", stderr)
	dir := fs.String("dir", "", "folder for the tokens, keys and configuration (required)")
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "nats.url of the configuration: the NATS server or cluster")
	listen := fs.String("listen", "0.0.0.0:8080", "http.listen of the configuration")
	origin := fs.String("origin", initOrigin, "origin of the audit log, the name of the signing key made on first run")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "noticerelay init: --dir is required")
		return ExitUsage
	}
	vkey, err := initDemo(*dir, *natsURL, *listen, *origin, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay init: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintf(stderr, "noticerelay init: configuration %s (tokens in %s, keys in %s); audit verifier key %s\n",
		filepath.Join(*dir, InitConfigFile), filepath.Join(*dir, config.DemoTokensFile), filepath.Join(*dir, "keys"), vkey)
	return ExitOK
}

// initDemo makes what is missing in dir, writes the configuration and
// prints the tokens file to w; it returns the audit verifier key.
func initDemo(dir, natsURL, listen, origin string, w io.Writer) (string, error) {
	c, _, err := config.Demo(dir)
	if err != nil {
		return "", err
	}
	keys := filepath.Join(dir, "keys")
	skey := filepath.Join(keys, auditlog.SigningKeyFile)
	if _, err := os.Stat(skey); errors.Is(err, os.ErrNotExist) {
		if _, _, err := auditlog.GenerateKeys(keys, origin); err != nil {
			return "", fmt.Errorf("making the audit keys: %w", err)
		}
	}
	data, err := os.ReadFile(skey)
	if err != nil {
		return "", fmt.Errorf("audit signing key: %w", err)
	}
	vkey, err := auditlog.VerifierKey(string(data))
	if err != nil {
		return "", fmt.Errorf("audit signing key %s: %w", skey, err)
	}
	pkey := filepath.Join(keys, auditlog.PseudonymKeyFile)
	if err := relay.WritePseudonymKey(pkey); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("making the pseudonym key: %w", err)
	}
	c.NATS = config.NATS{URL: natsURL}
	c.HTTP.Listen = listen
	c.Audit = config.Audit{Origin: strings.SplitN(vkey, "+", 2)[0], SigningKey: skey, VerifierKey: vkey, PseudonymKey: pkey}
	path := filepath.Join(dir, InitConfigFile)
	if err := config.WriteYAML(path, c); err != nil {
		return "", err
	}
	if _, err := config.Load(path, config.Options{}); err != nil {
		return "", fmt.Errorf("the configuration written is refused: %w", err)
	}
	tokens, err := os.ReadFile(filepath.Join(dir, config.DemoTokensFile))
	if err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(w, "%s# audit verifier key (docs/audit.md)\nexport NR_AUDIT_VERIFIER_KEY=%s\n", tokens, vkey); err != nil {
		return "", err
	}
	return vkey, nil
}
