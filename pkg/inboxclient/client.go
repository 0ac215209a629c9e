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
	"strings"
	"time"

	"github.com/noticerelay/noticerelay/pkg/delivery"
)

// Client is an authority's (or, for Do, any caller's) view of the relay's
// HTTP API.
type Client struct {
	base, token string
	max         int
	http        *http.Client
}

// New returns a client of the relay at base (e.g. https://relay.example)
// that sends token as its bearer token and fetches up to max deliveries at
// a time (1 to 100). A nil hc means a client with a 60 s timeout.
func New(base, token string, max int, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, max: max, http: hc}
}

// Do sends one request with the bearer token and returns the body (up to
// 256 MiB) and the status code.
func (c *Client) Do(ctx context.Context, method, path string, body []byte) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, 0, err
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
	data, code, err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/inbox?max=%d", c.max), nil)
	if err != nil {
		return nil, fmt.Errorf("GET /v1/inbox: %w", err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/inbox: HTTP %d: %s", code, bytes.TrimSpace(data))
	}
	var in struct {
		Deliveries []delivery.Out `json:"deliveries"`
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("GET /v1/inbox: %w", err)
	}
	return in.Deliveries, nil
}

// Ack acknowledges ids in one request (POST /v1/inbox/ack) and returns
// the status the relay answered for each.
func (c *Client) Ack(ctx context.Context, ids []string) (map[string]int, error) {
	body, _ := json.Marshal(map[string][]string{"ids": ids})
	data, code, err := c.Do(ctx, http.MethodPost, "/v1/inbox/ack", body)
	if err != nil {
		return nil, fmt.Errorf("POST /v1/inbox/ack: %w", err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("POST /v1/inbox/ack: HTTP %d: %s", code, bytes.TrimSpace(data))
	}
	var res struct {
		Results []struct {
			ID     string `json:"id"`
			Status int    `json:"status"`
		} `json:"results"`
	}
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
