package notice

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/noticerelay/noticerelay/pkg/jsonbody"
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

// MessageID returns the id of the message that sender (an authority id or
// "platform") sends about notice noticeID under idempotencyKey: a retried
// POST with the same key names the same message, which is stored once.
func MessageID(noticeID, sender, idempotencyKey string) string {
	return uuid.NewSHA1(namespace, []byte("message\x00"+noticeID+"\x00"+sender+"\x00"+idempotencyKey)).String()
}

// MessageDeliveryID returns the one delivery id of message messageID for
// its recipient.
func MessageDeliveryID(noticeID, recipient, messageID string) string {
	return DeliveryID(noticeID, recipient, "message\x00"+messageID)
}

// AttachmentDeliveryID returns the one delivery id of the file with
// pseudonym attachment (event.Pseudonyms.Attachment) of notice noticeID
// for recipient.
func AttachmentDeliveryID(noticeID, recipient, attachment string) string {
	return DeliveryID(noticeID, recipient, "attachment\x00"+attachment)
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
	// FollowUpOfID and SupersedesID are the ids of the earlier notices
	// (of the same platform) that the notice's follow_up_of and supersedes
	// name, as intake found them when it stored the notice.
	FollowUpOfID string `json:"follow_up_of_id,omitempty"`
	SupersedesID string `json:"supersedes_id,omitempty"`
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
	r, err := jsonbody.DecodeStored(data, "notice record", func(r *Record) int { return r.V }, RecordVersion)
	if err != nil {
		return nil, nil, err
	}
	var n Notice
	if err := json.Unmarshal(r.Notice, &n); err != nil {
		return nil, nil, fmt.Errorf("decoding stored notice %s: %w", r.ID, err)
	}
	return r, &n, nil
}

// DecodeWithdrawal parses a stored withdrawal request.
func DecodeWithdrawal(data []byte) (*Withdrawal, error) {
	return jsonbody.DecodeStored(data, "withdrawal", func(w *Withdrawal) int { return w.V }, RecordVersion)
}
