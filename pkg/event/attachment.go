package event

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Event types of evidence files (contract section 7). Both name the file
// by its pseudonym (Pseudonyms.Attachment), never by its name or hash; the
// queued and acknowledged events of an attachment delivery carry the same
// pseudonym, with kind attachment.
const (
	// AttachmentAdded: a platform stored a file for a notice.
	AttachmentAdded Type = "attachment_added"
	// AttachmentDelivered: an attachment delivery was first handed to its
	// recipient (inbox, NATS or webhook).
	AttachmentDelivered Type = "attachment_delivered"
)

// KindAttachment is the kind of a delivery that announces an evidence
// file.
const KindAttachment = "attachment"

// Attachment returns the pseudonym of the file with SHA-256 sha256 (hex)
// attached to notice id: keyed like a notice's, so that nobody without the
// key can tell from the log which file a notice carried, nor test a guess
// of its hash.
func (p *Pseudonyms) Attachment(noticeID, sha256Hex string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte("noticerelay attachment\x00"))
	m.Write([]byte(noticeID))
	m.Write([]byte{0})
	m.Write([]byte(sha256Hex))
	return hex.EncodeToString(m.Sum(nil)[:16])
}
