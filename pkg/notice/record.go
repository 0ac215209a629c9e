package notice

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
)

// namespace is the UUID namespace of notice and delivery ids.
var namespace = uuid.MustParse("6f1f6d0e-5b7a-4c1e-9a55-2f0c3d6e8b21")

// ID returns the notice id of (platform, reference). It is deterministic,
// so a retry of the same submission can never create a second notice.
func ID(platform, reference string) string {
	return uuid.NewSHA1(namespace, []byte("notice\x00"+platform+"\x00"+reference)).String()
}

// DeliveryID returns the one delivery id of (notice, authority, kind).
func DeliveryID(noticeID, authority, kind string) string {
	return uuid.NewSHA1(namespace, []byte("delivery\x00"+noticeID+"\x00"+authority+"\x00"+kind)).String()
}

// ValidID reports whether s is a notice or delivery id in canonical form.
func ValidID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// RecordVersion is the schema version of stored records.
const RecordVersion = 1

// Record is a notice as the relay stores it: the canonical body and who
// sent it when.
type Record struct {
	V          int             `json:"v"`
	ID         string          `json:"id"`
	Platform   string          `json:"platform"`
	Reference  string          `json:"reference"`
	ReceivedAt string          `json:"received_at"`
	BodySHA256 string          `json:"body_sha256"`
	Notice     json.RawMessage `json:"notice"`
}

// Ref is the reference record of a notice: what (platform, reference) was
// accepted with. It is kept for good (the body expires), so that
// idempotency lasts for good: the same reference again is answered from it.
type Ref struct {
	V          int    `json:"v"`
	ID         string `json:"id"`
	Platform   string `json:"platform"`
	Reference  string `json:"reference"`
	ReceivedAt string `json:"received_at"`
	BodySHA256 string `json:"body_sha256"`
}

// DecodeRef parses a stored reference record.
func DecodeRef(data []byte) (*Ref, error) {
	var r Ref
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decoding reference record: %w", err)
	}
	if r.V != RecordVersion {
		return nil, fmt.Errorf("reference record version %d is not %d", r.V, RecordVersion)
	}
	return &r, nil
}

// Withdrawal is a platform's request to withdraw a notice.
type Withdrawal struct {
	V           int    `json:"v"`
	NoticeID    string `json:"notice_id"`
	Platform    string `json:"platform"`
	Reference   string `json:"reference"`
	Reason      string `json:"reason"`
	RequestedAt string `json:"requested_at"`
}

// DecodeRecord parses a stored record, refusing unknown versions.
func DecodeRecord(data []byte) (*Record, *Notice, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, nil, fmt.Errorf("decoding notice record: %w", err)
	}
	if r.V != RecordVersion {
		return nil, nil, fmt.Errorf("notice record version %d is not %d", r.V, RecordVersion)
	}
	var n Notice
	if err := json.Unmarshal(r.Notice, &n); err != nil {
		return nil, nil, fmt.Errorf("decoding stored notice %s: %w", r.ID, err)
	}
	return &r, &n, nil
}

// DecodeWithdrawal parses a stored withdrawal request.
func DecodeWithdrawal(data []byte) (*Withdrawal, error) {
	var w Withdrawal
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("decoding withdrawal: %w", err)
	}
	if w.V != RecordVersion {
		return nil, fmt.Errorf("withdrawal version %d is not %d", w.V, RecordVersion)
	}
	return &w, nil
}
