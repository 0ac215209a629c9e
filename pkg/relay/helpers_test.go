package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// allEvents reads the whole event stream: each event's data, subject and
// headers on a line of its own, and how many events there are.
func allEvents(t *testing.T, r *relaytest.Relay) (string, int) {
	t.Helper()
	var all strings.Builder
	count := 0
	eachMessage(t, r, stream.Events, nil, func(m jetstream.Msg) {
		count++
		all.Write(m.Data())
		all.WriteString(m.Subject())
		for k, v := range m.Headers() {
			all.WriteString(k + fmt.Sprint(v))
		}
		all.WriteByte('\n')
	})
	return all.String(), count
}

// eachMessage calls fn with every message of stream name on the subjects
// filters match (every message when none), in order.
func eachMessage(t *testing.T, r *relaytest.Relay, name string, filters []string, fn func(jetstream.Msg)) {
	t.Helper()
	js, err := jetstream.New(r.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{FilterSubjects: filters})
	if err != nil {
		t.Fatal(err)
	}
	for {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			fn(m)
		}
		if got == 0 {
			return
		}
	}
}

// filesHolding reads every file under dir and reports each that holds one
// of needles in clear; it returns how many files it read.
func filesHolding(t *testing.T, dir string, needles ...string) int {
	t.Helper()
	scanned := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		for _, needle := range needles {
			if bytes.Contains(b, []byte(needle)) {
				t.Errorf("%s holds %q in clear", path, needle)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	return scanned
}
