package inboxclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrWithdrawn is the answer for a file whose notice the platform has
// withdrawn (410): it will never be handed out; acknowledge its delivery.
var ErrWithdrawn = errors.New("the notice was withdrawn: its file is no longer handed out")

// Attachment opens the file of the attachment delivery id (GET
// /v1/inbox/{id}/attachment): its bytes, or, for an authority with an age
// recipient, their age encryption. The caller reads it to its end, checks
// it against the delivery's SHA-256, and closes it. A withdrawn notice's
// file is ErrWithdrawn.
func (c *Client) Attachment(ctx context.Context, id string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/inbox/"+id+"/attachment", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /v1/inbox/%s/attachment: %w", id, err)
	}
	if resp.StatusCode == http.StatusGone {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, fmt.Errorf("GET /v1/inbox/%s/attachment: %w", id, ErrWithdrawn)
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, fmt.Errorf("GET /v1/inbox/%s/attachment: HTTP %d", id, resp.StatusCode)
	}
	return resp.Body, nil
}
