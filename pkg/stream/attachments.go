package stream

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Attachments holds evidence files (contract section 7): each file in
// chunks, and one record per stored file that names its chunks. Personal
// data, kept for the configured retention.
const Attachments = "NR_ATTACHMENTS"

// AttachmentChunkSize is the size of every chunk but a file's last: small
// enough that a file never sits whole in memory on its way in or out.
const AttachmentChunkSize = 256 << 10

const (
	attachmentChunkPrefix  = "nr.attachment.chunk."
	attachmentRecordPrefix = "nr.attachment.rec."
)

// AttachmentChunkSubject is where chunk n of one upload of a file for
// notice id is stored. Each upload has its own id: the chunks of an upload
// that never finished are named by no record and expire unread.
func AttachmentChunkSubject(noticeID, upload string, n int) string {
	return attachmentChunkPrefix + noticeID + "." + upload + "." + strconv.Itoa(n)
}

// AttachmentUploadFilter matches every chunk of one upload.
func AttachmentUploadFilter(noticeID, upload string) string {
	return attachmentChunkPrefix + noticeID + "." + upload + ".*"
}

// AttachmentRecordSubject is where the record of notice id's attachment in
// slot n (0, 1, ... up to limits.attachments_per_notice) is stored: one
// subject per slot, so that two uploads racing for the last slot cannot
// both take it.
func AttachmentRecordSubject(noticeID string, slot int) string {
	return attachmentRecordPrefix + noticeID + "." + strconv.Itoa(slot)
}

// AttachmentRecordFilter matches every attachment record of notice id
// ("*" for every notice).
func AttachmentRecordFilter(noticeID string) string { return attachmentRecordPrefix + noticeID + ".*" }

// AttachmentSubjects are every subject of the attachment stream.
const AttachmentSubjects = "nr.attachment.>"

// attachments is the configuration of the attachment stream: one message
// per subject, expiring with the notices. Unlike the other streams it may
// be purged by subject: an upload refused after its chunks were stored
// (over the count limit, a duplicate, a body cut short) purges them.
func (t Topology) attachments() jetstream.StreamConfig {
	c := t.unique(Attachments, "evidence files in chunks and their records (personal data, retention-limited)",
		[]string{AttachmentSubjects}, AttachmentChunkSize+(64<<10))
	c.MaxAge = t.Retention
	c.DenyPurge = false
	c.AllowAtomicPublish = false
	return c
}

// AttachmentIndexSubject maps the pseudonym of a notice that has
// attachments to its id: written before a notice's first file, so that a
// recipient the notice gains later (a queued event names the notice only
// by its pseudonym) finds the files with one read, and a notice without
// files costs that one read.
func AttachmentIndexSubject(pseudonym string) string { return "nr.attachment.idx." + pseudonym }

// IsEventSubject reports whether subject is a lifecycle event's.
func IsEventSubject(subject string) bool { return strings.HasPrefix(subject, eventPrefix) }

// AttachmentLinkSubject records that notice later follows up or
// supersedes notice earlier: written by the attachments stage before it
// hands later's recipients the files of earlier, so that a file added to
// earlier afterwards finds them too.
func AttachmentLinkSubject(earlier, later string) string {
	return "nr.attachment.link." + earlier + "." + later
}

// AttachmentLinkFilter matches every link from notice earlier.
func AttachmentLinkFilter(earlier string) string { return "nr.attachment.link." + earlier + ".*" }
