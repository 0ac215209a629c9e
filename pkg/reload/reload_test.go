package reload_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/noticerelay/noticerelay/pkg/reload"
)

// Two files that must agree, like a certificate and its key: a change of
// one alone is refused and the old value stays; once the other follows,
// the new value is in use. Unchanged files are not loaded again, nor is a
// failed pair retried.
func TestPairRotation(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	write := func(path, s string) {
		t.Helper()
		// Rename over the old file, as rotation tools do.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	loads := 0
	load := func() (string, error) {
		loads++
		x, err1 := os.ReadFile(a)
		y, err2 := os.ReadFile(b)
		if err := errors.Join(err1, err2); err != nil {
			return "", err
		}
		if string(x) != string(y) {
			return "", errors.New("the files do not match")
		}
		return string(x), nil
	}
	var reports []string
	write(a, "v1")
	write(b, "v1")
	f, err := reload.Open([]string{a, b}, load, reload.Options[string]{OnReload: func(v string, err error) {
		reports = append(reports, v+errString(err))
	}})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := f.Reload(); changed || err != nil || loads != 1 {
		t.Fatalf("unchanged: Reload() = %v, %v after %d loads", changed, err, loads)
	}
	write(a, "v2")
	if changed, err := f.Reload(); changed || err == nil || f.Current() != "v1" {
		t.Fatalf("half rotated: Reload() = %v, %v; in use %q", changed, err, f.Current())
	}
	if _, err := f.Reload(); err == nil || loads != 2 {
		t.Fatalf("half rotated again: %v after %d loads, want the error without a third load", err, loads)
	}
	write(b, "v2")
	if changed, err := f.Reload(); !changed || err != nil || f.Current() != "v2" {
		t.Fatalf("rotated: Reload() = %v, %v; in use %q", changed, err, f.Current())
	}
	if got := strings.Join(reports, ","); got != "the files do not match,v2" {
		t.Errorf("OnReload saw %q", got)
	}
	if err := os.Remove(b); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reload(); err == nil || f.Current() != "v2" {
		t.Fatalf("missing file: %v; in use %q", err, f.Current())
	}
	if _, err := reload.Open([]string{a, b}, load, reload.Options[string]{}); err == nil {
		t.Fatal("Open with a missing file succeeded")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
