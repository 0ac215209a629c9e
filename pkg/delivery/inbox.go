package delivery

// The bodies of the inbox API (contract section 5), written by
// services/inbox and read by its clients (pkg/inboxclient).

// Inbox is the answer to GET /v1/inbox.
type Inbox struct {
	Deliveries []Out `json:"deliveries"`
	// Authority is whom the deliveries are for, the token's holder: a
	// receiving station names it on its pages without being told.
	Authority *InboxAuthority `json:"authority,omitempty"`
}

// InboxAuthority names the authority an inbox belongs to, as the relay's
// configuration does.
type InboxAuthority struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Country string `json:"country,omitempty"`
}

// AckRequest is the body of POST /v1/inbox/ack.
type AckRequest struct {
	IDs []string `json:"ids"`
}

// AckResults is the answer to POST /v1/inbox/ack: one result per id.
type AckResults struct {
	Results []AckResult `json:"results"`
}

// AckResult is one id's outcome in a bulk acknowledgement.
type AckResult struct {
	ID     string `json:"id"`
	Status int    `json:"status"`
}
