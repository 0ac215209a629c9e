package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/event"
)

// keysBucket holds the pseudonym key when the configuration names no key
// file, so that every process of a `serve` deployment agrees on it.
const keysBucket = "NR_RELAY_KEYS"

// ReadPseudonymKey reads a pseudonym key file: 64 hex digits.
func ReadPseudonymKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit.pseudonym_key: %w", err)
	}
	key, err := hex.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil || len(key) != event.PseudonymKeySize {
		return nil, fmt.Errorf("audit.pseudonym_key: %s must hold %d bytes as hex", path, event.PseudonymKeySize)
	}
	return key, nil
}

// WritePseudonymKey makes a new random key file (mode 0600); it refuses to
// overwrite one.
func WritePseudonymKey(path string) error {
	key := make([]byte, event.PseudonymKeySize)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pseudonymKey finds the key that names notices in the log: the configured
// file; for `dev`, a file under the data dir made on first start; otherwise
// a key kept in NATS, made by the first process to start.
func (r *Relay) pseudonymKey(ctx context.Context, js jetstream.JetStream, replicas int) ([]byte, error) {
	if path := r.opts.Config.Audit.PseudonymKey; path != "" {
		return ReadPseudonymKey(path)
	}
	if r.opts.Embedded {
		path := filepath.Join(r.opts.DataDir, "keys", "pseudonym.key")
		if err := WritePseudonymKey(path); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("making %s: %w", path, err)
		}
		return ReadPseudonymKey(path)
	}
	r.log.Warn("audit.pseudonym_key is not configured: keeping the pseudonym key in NATS; " +
		"configure a key file so that nobody who can read NATS can also de-pseudonymise the log")
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: keysBucket,
		Description: "relay keys (pseudonym key when no file is configured)", History: 1,
		Storage: jetstream.FileStorage, Replicas: replicas})
	if err != nil {
		return nil, fmt.Errorf("keys bucket: %w", err)
	}
	key := make([]byte, event.PseudonymKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if _, err := kv.Create(ctx, "pseudonym", key); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("storing pseudonym key: %w", err)
	}
	e, err := kv.Get(ctx, "pseudonym")
	if err != nil {
		return nil, fmt.Errorf("reading pseudonym key: %w", err)
	}
	if len(e.Value()) != event.PseudonymKeySize {
		return nil, fmt.Errorf("pseudonym key in %s has %d bytes", keysBucket, len(e.Value()))
	}
	return e.Value(), nil
}
