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
