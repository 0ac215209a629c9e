//go:build linux

package cli

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/noticerelay/noticerelay/pkg/web"
)

// openPTY opens a pseudo-terminal: what is written to master is typed at
// the terminal tty.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("naming the pseudo-terminal: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// At a terminal, passwd asks twice, without echo, and refuses two
// different passwords.
func TestPasswdAtATerminal(t *testing.T) {
	for _, tc := range []struct {
		name, first, again string
		code               int
	}{
		{"the same twice", "a long enough password", "a long enough password", ExitOK},
		{"two different", "a long enough password", "another long password", ExitFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, tty := openPTY(t)
			if _, err := master.WriteString(tc.first + "\n" + tc.again + "\n"); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := passwd(nil, tty, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), "Password: ") || !strings.Contains(errb.String(), "Again: ") {
				t.Fatalf("it did not ask twice: %q", errb.String())
			}
			h := strings.TrimSpace(out.String())
			switch {
			case tc.code == ExitOK && (web.CheckPasswordHash(h) != nil || !web.PasswordMatches(tc.first, h)):
				t.Fatalf("not the hash of the password: %q", h)
			case tc.code != ExitOK && (h != "" || !strings.Contains(errb.String(), "differ")):
				t.Fatalf("two different passwords: printed %q, said %q", h, errb.String())
			}
		})
	}
}
