package event

// Event types of delivery trouble: both hold no personal data, only the
// delivery's ids, recipient and kind.
const (
	// Escalated: an urgent delivery stayed unacknowledged past its
	// deadline (deliveries.urgent_deadline).
	Escalated Type = "escalated"
	// DeadLettered: a delivery exhausted its retry budget (or could not be
	// processed) and moved to the dead-letter stream.
	DeadLettered Type = "dead_lettered"
)

// KindEscalation is the kind of the delivery that re-notifies an
// authority's escalation target.
const KindEscalation = "escalation"

// Event types of messages between an authority and a platform (contract
// section 8). Both hold the message's id, kind code, sender and recipient,
// never its text; the recipient's receipt is an acknowledged event of kind
// message.
const (
	// MessageSent: a message was stored for its recipient.
	MessageSent Type = "message_sent"
	// MessageDelivered: a message was first handed to its recipient (inbox,
	// NATS, webhook or the platform's notify URL or message list).
	MessageDelivered Type = "message_delivered"
)

// KindMessage is the kind of a delivery that carries a message.
const KindMessage = "message"
