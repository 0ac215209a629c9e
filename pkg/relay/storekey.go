package relay

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/noticerelay/noticerelay/pkg/durable"
)

// storeKey finds the key that encrypts the embedded server's store at
// rest: nats.store_key_env or nats.store_key_file; for `dev` without
// either, a key file under the data dir made on first start. That last
// default keeps the key beside the store it protects: it defeats a copy
// of the store alone (a backup, a snapshot, a disk image of the stream
// files), not someone who can read the whole data dir (docs/delivery.md).
func (r *Relay) storeKey() (string, error) {
	key, err := r.opts.Config.NATS.StoreKey()
	if err != nil || key != "" {
		return key, err
	}
	path := filepath.Join(r.opts.DataDir, "keys", "store.key")
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("making %s: %w", path, err)
	}
	switch err := durable.WriteNew(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); {
	case errors.Is(err, os.ErrExist):
	case err != nil:
		return "", fmt.Errorf("making %s: %w", path, err)
	default:
		r.log.Warn("nats store key made under the data dir; configure nats.store_key_env or nats.store_key_file to keep it elsewhere")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	key = strings.TrimSpace(string(data))
	if len(key) < 32 {
		return "", fmt.Errorf("%s must hold a key of at least 32 characters", path)
	}
	return key, nil
}
