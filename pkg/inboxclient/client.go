// Package inboxclient speaks the relay's HTTP API the way an authority
// does (contract section 5): fetch leased deliveries, urgent first, and
// acknowledge them in one request. The `inbox pull` command, the receiving
// station and the load generator share it.
package inboxclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/message"
)

// Client is an authority's (or, for Do, any caller's) view of the relay's
// HTTP API.
type Client struct {
	base, token string
	max         int
	http        *http.Client
}

// New returns a client of the relay at base (e.g. https://relay.example)
// that sends token as its bearer token and fetches up to perFetch
// deliveries at a time (1 to 100). A nil hc means a client with a 60 s
// timeout.
func New(base, token string, perFetch int, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, max: perFetch, http: hc}
}

// Do sends one request with the bearer token and returns the body (up to
// 256 MiB) and the status code.
func (c *Client) Do(ctx context.Context, method, path string, body []byte) ([]byte, int, error) {
	return c.do(ctx, method, path, body, nil)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, header http.Header) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return data, resp.StatusCode, err
}

// Fetch leases up to max deliveries (GET /v1/inbox), urgent first.
func (c *Client) Fetch(ctx context.Context) ([]delivery.Out, error) {
	in, err := c.FetchInbox(ctx)
	return in.Deliveries, err
}

// FetchInbox is Fetch with the rest of the relay's answer: which
// authority the inbox belongs to.
func (c *Client) FetchInbox(ctx context.Context) (delivery.Inbox, error) {
	var in delivery.Inbox
	data, code, err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/inbox?max=%d", c.max), nil)
	if err != nil {
		return in, fmt.Errorf("GET /v1/inbox: %w", err)
	}
	if code != http.StatusOK {
		return in, fmt.Errorf("GET /v1/inbox: HTTP %d: %s", code, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return delivery.Inbox{}, fmt.Errorf("GET /v1/inbox: %w", err)
	}
	return in, nil
}

// Ack acknowledges ids in one request (POST /v1/inbox/ack) and returns
// the status the relay answered for each.
func (c *Client) Ack(ctx context.Context, ids []string) (map[string]int, error) {
	body, _ := json.Marshal(delivery.AckRequest{IDs: ids})
	data, code, err := c.Do(ctx, http.MethodPost, "/v1/inbox/ack", body)
	if err != nil {
		return nil, fmt.Errorf("POST /v1/inbox/ack: %w", err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("POST /v1/inbox/ack: HTTP %d: %s", code, bytes.TrimSpace(data))
	}
	var res delivery.AckResults
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("POST /v1/inbox/ack: %w", err)
	}
	statuses := make(map[string]int, len(res.Results))
	for _, r := range res.Results {
		statuses[r.ID] = r.Status
	}
	return statuses, nil
}

// AckAll acknowledges ids and reports every one the relay did not answer
// with 204.
func (c *Client) AckAll(ctx context.Context, ids []string) error {
	statuses, err := c.Ack(ctx, ids)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if st := statuses[id]; st != http.StatusNoContent {
			errs = append(errs, fmt.Errorf("ack %s: HTTP %d", id, st))
		}
	}
	return errors.Join(errs...)
}

// StatusError is an answer of the relay other than the one a call
// expects, with the problem it gave (RFC 9457 JSON, or text).
type StatusError struct {
	Op     string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.Status, e.Body)
}

// Permanent reports whether the same request can never succeed: a 4xx
// other than 401, 403 (a token being rotated), 408 and 429 (retry later).
func (e *StatusError) Permanent() bool {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return e.Status >= 400 && e.Status < 500
}

// SendMessage sends m about the notice of delivery deliveryID
// (POST /v1/inbox/{id}/messages) under idempotencyKey: sent again with the
// same key, the relay stores it once and answers as the first time. A
// refusal is a *StatusError.
func (c *Client) SendMessage(ctx context.Context, deliveryID, idempotencyKey string, m message.AuthorityRequest) (message.Sent, error) {
	op := "POST /v1/inbox/" + deliveryID + "/messages"
	body, err := json.Marshal(m)
	if err != nil {
		return message.Sent{}, fmt.Errorf("%s: %w", op, err)
	}
	data, code, err := c.do(ctx, http.MethodPost, "/v1/inbox/"+url.PathEscape(deliveryID)+"/messages", body,
		http.Header{"Idempotency-Key": {idempotencyKey}})
	if err != nil {
		return message.Sent{}, fmt.Errorf("%s: %w", op, err)
	}
	if code != http.StatusCreated {
		return message.Sent{}, &StatusError{Op: op, Status: code, Body: string(bytes.TrimSpace(data))}
	}
	var s message.Sent
	if err := json.Unmarshal(data, &s); err != nil || s.ID == "" {
		return message.Sent{}, fmt.Errorf("%s: an answer without id: %s", op, bytes.TrimSpace(data))
	}
	return s, nil
}
