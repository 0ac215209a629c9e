package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/noticerelay/noticerelay/pkg/web"
)

func TestPasswdFromStdin(t *testing.T) {
	var out, errb bytes.Buffer
	if code := passwd(nil, strings.NewReader("a long enough password\n"), &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	h := strings.TrimSpace(out.String())
	if !strings.HasPrefix(h, "$argon2id$") || web.CheckPasswordHash(h) != nil {
		t.Fatalf("not an argon2id hash: %q", h)
	}
	out.Reset()
	if code := passwd(nil, strings.NewReader("short\n"), &out, &errb); code != ExitUsage || out.Len() != 0 {
		t.Fatalf("a short password: exit %d, printed %q", code, out.String())
	}
}

func TestStationNeedsAValidConfig(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(t.Context(), []string{"station"}, &out, &errb); code != ExitUsage {
		t.Fatalf("without --config: exit %d", code)
	}
	if code := Main(t.Context(), []string{"station", "--config", "testdata/does-not-exist.yaml"}, &out, &errb); code != ExitUsage ||
		!strings.Contains(errb.String(), "does-not-exist.yaml") {
		t.Fatalf("a missing file: exit %d: %s", code, errb.String())
	}
}
