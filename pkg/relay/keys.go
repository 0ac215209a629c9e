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

	"github.com/noticerelay/noticerelay/pkg/durable"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

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
	return durable.WriteNew(path, []byte(hex.EncodeToString(key)+"\n"), 0o600)
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
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: stream.KeysBucket,
		Description: "relay keys (pseudonym key when no file is configured)", History: 1,
		Storage: jetstream.FileStorage, Replicas: replicas})
	if err != nil {
		return nil, fmt.Errorf("keys bucket: %w", err)
	}
	key := make([]byte, event.PseudonymKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if _, err := kv.Create(ctx, stream.PseudonymKey, key); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("storing pseudonym key: %w", err)
	}
	return StoredPseudonymKey(ctx, js)
}

// StoredPseudonymKey reads the pseudonym key kept in NATS: fault.NotFound
// when there is none (the relay has a key file), another fault when NATS
// does not answer.
func StoredPseudonymKey(ctx context.Context, js jetstream.JetStream) ([]byte, error) {
	kv, err := js.KeyValue(ctx, stream.KeysBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fault.Errorf("pseudonym key", fault.NotFound, "no %s bucket", stream.KeysBucket)
	}
	if err != nil {
		return nil, stream.Classify("pseudonym key: "+stream.KeysBucket, err)
	}
	e, err := kv.Get(ctx, stream.PseudonymKey)
	if err != nil {
		return nil, stream.Classify("pseudonym key", err)
	}
	if len(e.Value()) != event.PseudonymKeySize {
		return nil, fault.Errorf("pseudonym key", fault.Internal, "the key in %s has %d bytes", stream.KeysBucket, len(e.Value()))
	}
	return e.Value(), nil
}
