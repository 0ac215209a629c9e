package relay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/config"
)

// DevOrigin is the log origin of the audit keys `dev` makes.
const DevOrigin = "localhost/noticerelay-dev"

// devAuditKeys gives `dev` audit keys when the configuration names none: a
// signing key made on first start under <data>/keys/ (with its verifier
// key beside it), so that the log is checkpointed from the first event. It
// returns the configuration to run with (a copy when it changed).
func (r *Relay) devAuditKeys(c *config.Config) (*config.Config, error) {
	if !r.opts.Embedded || c.Audit.SigningKey != "" {
		return c, nil
	}
	dir := filepath.Join(r.opts.DataDir, "keys")
	origin := c.Audit.Origin
	if origin == "" {
		origin = DevOrigin
	}
	path := filepath.Join(dir, auditlog.SigningKeyFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if _, _, err := auditlog.GenerateKeys(dir, origin); err != nil {
			return nil, fmt.Errorf("making dev audit keys: %w", err)
		}
	}
	skey, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dev audit keys: %w", err)
	}
	vkey, err := auditlog.VerifierKey(string(skey))
	if err != nil {
		return nil, fmt.Errorf("dev audit keys: %s: %w", path, err)
	}
	if c.Audit.VerifierKey != "" && strings.TrimSpace(c.Audit.VerifierKey) != vkey {
		return nil, fmt.Errorf("audit.verifier_key does not match the dev signing key %s", path)
	}
	cp := *c
	cp.Audit.SigningKey, cp.Audit.VerifierKey = path, vkey
	cp.Audit.Origin = strings.SplitN(vkey, "+", 2)[0]
	r.log.Info("audit log checkpoints signed with the dev key; auditors verify with this verifier key",
		zap.String("verifier_key", vkey), zap.String("signing_key", path))
	return &cp, nil
}
