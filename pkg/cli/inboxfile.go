package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"

	"filippo.io/age"

	"github.com/noticerelay/noticerelay/pkg/attachment"
	"github.com/noticerelay/noticerelay/pkg/durable"
	"github.com/noticerelay/noticerelay/pkg/inboxclient"
)

// files opens the file of an attachment delivery (the relay's HTTP route);
// nil when the client has no --url.
type files interface {
	Attachment(ctx context.Context, id string) (io.ReadCloser, error)
}

// safeExt is an extension the client keeps from the platform's file name.
var safeExt = regexp.MustCompile(`^\.[A-Za-z0-9]{1,10}$`)

// fileName is where the file of attachment delivery id is written: beside
// its delivery, with the extension of the platform's file name when it is
// a plain one (never the name itself: it is the platform's to choose).
func fileName(id string, info attachment.Info) string {
	ext := filepath.Ext(info.Filename)
	if !safeExt.MatchString(ext) {
		ext = ".bin"
	}
	return id + ext
}

// writeFile fetches the file of attachment delivery id, opens it with the
// identities when the relay sealed it (it seals the file when it sealed the
// delivery), and writes it durably as
// DIR/<id>.<ext> after checking its size and SHA-256 against the delivery
// (temporary file, fsync, rename, fsync of the directory). It returns the
// file's name, or "" when the relay answers that the notice was withdrawn
// (the file is never handed out: the delivery is done without it).
func (p *puller) writeFile(ctx context.Context, id string, desc []byte, sealed bool) (string, error) {
	var info attachment.Info
	if err := json.Unmarshal(desc, &info); err != nil || len(info.SHA256) != 64 {
		return "", fmt.Errorf("the attachment's description is unreadable: %v", err)
	}
	if p.files == nil {
		return "", errors.New("an attachment's bytes come from the relay's HTTP API: give --url and --token")
	}
	body, err := p.files.Attachment(ctx, id)
	if errors.Is(err, inboxclient.ErrWithdrawn) {
		return "", nil // the delivery is written without a file, and acknowledged
	}
	if err != nil {
		return "", err
	}
	defer body.Close()
	in := io.Reader(body)
	if sealed {
		if in, err = age.Decrypt(body, p.identities...); err != nil {
			return "", fmt.Errorf("opening the file: %w", err)
		}
	}
	name := fileName(id, info)
	err = durable.ReplaceWith(filepath.Join(p.out, name), 0o600, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), in)
		if err != nil {
			return fmt.Errorf("writing the file: %w", err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != info.Size || got != info.SHA256 {
			return fmt.Errorf("the file does not match its delivery (%d bytes, SHA-256 %s)", n, got)
		}
		return nil
	})
	return name, err
}
