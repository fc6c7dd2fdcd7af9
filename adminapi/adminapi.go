// Package adminapi holds what the admin.api.dws_notify endpoints answer
// (the JSON bodies) and what clients need to call them: the paths, the
// limits, the backup's status trailer and the code of an error answer a
// client acts on. The endpoints are in caddymodule (admin.go), the client
// is the `caddy dws-notify` CLI (package cli); this leaf package is all
// they share. It imports nothing of the project or of Caddy.
package adminapi

import "time"

// Base is the path prefix of every dws_notify admin endpoint.
const Base = "/dws_notify/"

// Limits of the follow-up list.
const (
	// DefaultFollowUpLimit is how many records GET /dws_notify/follow_up
	// returns when no limit is given.
	DefaultFollowUpLimit = 100
	// MaxFollowUpLimit is the largest limit GET /dws_notify/follow_up
	// accepts.
	MaxFollowUpLimit = 1000
)

// BackupStatusTrailer is the HTTP trailer of GET /dws_notify/backup: "ok"
// once the whole backup was sent, otherwise the error that cut it short.
// A backup is a sequence of record batches with no end marker, so a cut
// between two batches would look like a smaller complete backup; the
// trailer tells them apart.
const BackupStatusTrailer = "Dws-Backup-Status"

// ErrorCodeHeader, on an error answer, names the kind of error for
// clients that act on it (its value is one of the Code constants); error
// answers of other kinds do not have it. The body of an error answer is
// Caddy's: {"error": "<message>"}.
const ErrorCodeHeader = "Dws-Notify-Error"

// CodeNoRecord: GET /dws_notify/record found no record of the requestId,
// and every store was read (HTTP 404).
const CodeNoRecord = "no_record"

// RecordView is one idempotency record as the admin API shows it: the key,
// the state, how the backend took the notification and the times. It has
// no card data (records have none) and no fingerprint.
type RecordView struct {
	// Storage names the store holding the record: the Badger storage
	// directory, or "redis <host:port> db <n> prefix <prefix>" (never a
	// password).
	Storage string `json:"storage"`
	// ClientID, API and RequestID are the record's key.
	ClientID  string `json:"client_id"`
	API       string `json:"api"`
	RequestID string `json:"request_id"`
	// State is "in_flight" (being forwarded) or "done".
	State string `json:"state"`
	// Outcome is "accepted" or "business_rejected" for a done record, or
	// "queued" for one queued in the inbox at receipt (acknowledge
	// on_receipt): how the backend took it is then Inbox's.
	Outcome string `json:"outcome,omitempty"`
	// ResultCode is the result code DWS was answered with (done records).
	ResultCode string `json:"result_code,omitempty"`
	// BackendStatus is the HTTP status the backend answered (done records).
	BackendStatus int `json:"backend_status,omitempty"`
	// ClaimedAt is when the current claim was taken.
	ClaimedAt time.Time `json:"claimed_at,omitzero"`
	// LeaseExpiry is when an in-flight claim's lease ends.
	LeaseExpiry time.Time `json:"lease_expiry,omitzero"`
	// LeaseExpired is set for an in-flight record whose lease has ended: the
	// claim was abandoned (the gateway stopped mid-forward) and DWS's next
	// retry will be forwarded.
	LeaseExpired bool `json:"lease_expired,omitempty"`
	// CompletedAt is when a done record was completed.
	CompletedAt time.Time `json:"completed_at,omitzero"`
	// ExpiresAt is when the store forgets the record (end of retention).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Inbox is the queue item of a record whose outcome is "queued": its
	// state in the inbox, tries and times. Absent for other records, and
	// once the item's retention ended.
	Inbox *ItemView `json:"inbox,omitempty"`
	// InboxError says why the inbox item of a queued record could not be
	// read (Inbox is then absent, and says nothing of the item): the
	// record itself was read.
	InboxError string `json:"inbox_error,omitempty"`
}

// StoreError is a store that could not be read for an answer: the answer
// holds what the other stores said, and lacks what this one holds.
type StoreError struct {
	// Storage names the store, as in RecordView.
	Storage string `json:"storage"`
	// Error says what went wrong; it names the store and never a password.
	Error string `json:"error"`
	// Status is the HTTP status the endpoint would answer if this were the
	// only store: 503 when asking again later may work (the store is being
	// closed or reopened, its Redis is unreachable, the read was cut
	// short), 500 otherwise.
	Status int `json:"status"`
}

// RecordsAnswer is the body of GET /dws_notify/record.
type RecordsAnswer struct {
	Records []RecordView `json:"records"`
	// Errors lists the stores that could not be read (empty when every
	// store answered): the requestId may have more records there.
	Errors []StoreError `json:"errors"`
}

// OutcomeCounts counts a store's live records by outcome.
type OutcomeCounts struct {
	// InFlight counts records being forwarded (or abandoned mid-forward
	// with a lease not yet reclaimed).
	InFlight int `json:"in_flight"`
	// Accepted counts notifications the backend accepted.
	Accepted int `json:"accepted"`
	// BusinessRejected counts notifications the backend refused for a
	// business reason; DWS was acknowledged (the follow-up list).
	BusinessRejected int `json:"business_rejected"`
	// Queued counts notifications acknowledged on receipt (their delivery
	// is the queue's: GET /dws_notify/queue).
	Queued int `json:"queued,omitempty"`
	// Other counts done records with an outcome this version does not know.
	Other int `json:"other,omitempty"`
	// Total is the number of live records.
	Total int `json:"total"`
}

// StoreStats is the counts of one store.
type StoreStats struct {
	// Storage names the store: the Badger storage directory, or
	// "redis <host:port> db <n> prefix <prefix>" (never a password).
	Storage string `json:"storage"`
	OutcomeCounts
}

// StatsAnswer is the body of GET /dws_notify/stats.
type StatsAnswer struct {
	// Stores are the stores that were counted.
	Stores []StoreStats `json:"stores"`
	// Total sums Stores: the stores in Errors are not in it.
	Total OutcomeCounts `json:"total"`
	// Errors lists the stores that could not be counted (empty when every
	// store answered).
	Errors []StoreError `json:"errors"`
}

// FollowUpAnswer is the body of GET /dws_notify/follow_up.
type FollowUpAnswer struct {
	// Records are the business-rejected records, oldest completion first
	// (they are the first to expire), at most Limit of them.
	Records []RecordView `json:"records"`
	// Total is how many business-rejected records matched.
	Total int `json:"total"`
	// Limit is the limit that was applied.
	Limit int `json:"limit"`
	// Truncated is set when Total is more than Limit.
	Truncated bool `json:"truncated"`
	// Errors lists the stores that could not be read (empty when every
	// store answered): their business-rejected records are neither listed
	// nor in Total.
	Errors []StoreError `json:"errors"`
}

// Limits of the dead-letter list.
const (
	// DefaultDeadLetterLimit is how many dead letters GET
	// /dws_notify/dead_letters returns when no limit is given.
	DefaultDeadLetterLimit = 100
	// MaxDeadLetterLimit is the largest limit it accepts.
	MaxDeadLetterLimit = 1000
)

// CodeLaterRemoveDelivered: POST /dws_notify/redeliver refused to put
// back a dead addPaymentMethod because a later removePaymentMethod of the
// same customer reached the backend: it was delivered, is being delivered
// (leased) or was refused for a business reason (HTTP 409); force
// overrides.
const CodeLaterRemoveDelivered = "later_remove_delivered"

// CodeLaterAddDelivered: POST /dws_notify/redeliver refused to put back a
// dead removePaymentMethod because a later addPaymentMethod of the same
// customer reached the backend, as for CodeLaterRemoveDelivered (HTTP
// 409); force overrides.
const CodeLaterAddDelivered = "later_add_delivered"

// Stale reports whether code is that of a dead letter left dead because a
// later notification of its customer overtook it (CodeLaterRemoveDelivered,
// CodeLaterAddDelivered): the ones force redelivers.
func Stale(code string) bool {
	return code == CodeLaterRemoveDelivered || code == CodeLaterAddDelivered
}

// CodeNotRedelivered: POST /dws_notify/redeliver left every dead letter
// of the requestId dead, some skipped for a later removePaymentMethod and
// some for a later addPaymentMethod (HTTP 409); the message lists each.
const CodeNotRedelivered = "not_redelivered"

// CodePayloadExpired: POST /dws_notify/redeliver left every dead letter
// of the requestId dead because its payload expired with the dead
// letters' retention (HTTP 409); nothing can redeliver it, force neither.
// A mix of stale and expired dead letters gets the stale code.
const CodePayloadExpired = "payload_expired"

// RedeliverForceHint ends the message of a 409 answer of POST
// /dws_notify/redeliver exactly when force=1 would redeliver every dead
// letter it left (all were skipped as stale); a client that spells force
// otherwise (the CLI's --force) may replace it.
const RedeliverForceHint = "(force=1 redelivers anyway)"

// ItemView is one queued notification (acknowledge on_receipt) as the
// admin API shows it: its key, its state in the queue, its tries and
// times. It has no payload and no card data.
type ItemView struct {
	// Storage names the store holding it, as in RecordView.
	Storage   string `json:"storage"`
	ClientID  string `json:"client_id"`
	API       string `json:"api"`
	RequestID string `json:"request_id"`
	// State is pending, leased, delivered, business_rejected or dead.
	State string `json:"state"`
	// Attempts counts the tries since it was queued or redelivered.
	Attempts      int       `json:"attempts"`
	EnqueuedAt    time.Time `json:"enqueued_at"`
	RedeliveredAt time.Time `json:"redelivered_at,omitzero"`
	// DueAt is when a pending item is tried next.
	DueAt time.Time `json:"due_at,omitzero"`
	// LeaseExpiry is when the lease of a leased item (one being delivered)
	// ends; absent in other states.
	LeaseExpiry time.Time `json:"lease_expiry,omitzero"`
	// LastStatus is the backend's status at the last try (0: none), and
	// LastReason what went wrong then (status, error, timeout, decrypt,
	// stopped).
	LastStatus int    `json:"last_status,omitempty"`
	LastReason string `json:"last_reason,omitempty"`
	// FinishedAt is when the last try ended an item that is delivered,
	// business_rejected or dead: for a delivered one, when the backend
	// took it.
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// HasPayload reports whether the notification itself is still kept
	// (a dead letter can be redelivered while it is).
	HasPayload bool      `json:"has_payload"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
}

// QueueCounts counts a store's queue items by state.
type QueueCounts struct {
	Pending          int `json:"pending"`
	Leased           int `json:"leased"`
	Delivered        int `json:"delivered"`
	BusinessRejected int `json:"business_rejected"`
	Dead             int `json:"dead"`
	Total            int `json:"total"`
}

// QueueStoreView is the queue of one store.
type QueueStoreView struct {
	Storage string `json:"storage"`
	// Queued counts the notifications not yet delivered (pending and
	// leased); Oldest is when the oldest of them arrived.
	Queued int       `json:"queued"`
	Oldest time.Time `json:"oldest,omitzero"`
	// States counts every item the store still keeps, by state.
	States QueueCounts `json:"states"`
}

// QueueAnswer is the body of GET /dws_notify/queue.
type QueueAnswer struct {
	Stores []QueueStoreView `json:"stores"`
	Errors []StoreError     `json:"errors"`
}

// DeadLettersAnswer is the body of GET /dws_notify/dead_letters.
type DeadLettersAnswer struct {
	// Items are the dead letters, oldest arrival first, at most Limit.
	Items     []ItemView   `json:"items"`
	Total     int          `json:"total"`
	Limit     int          `json:"limit"`
	Truncated bool         `json:"truncated"`
	Errors    []StoreError `json:"errors"`
}

// RedeliverAnswer is the body of POST /dws_notify/redeliver.
type RedeliverAnswer struct {
	// Redelivered are the dead letters put back in the queue.
	Redelivered []ItemView `json:"redelivered"`
	// Skipped are dead letters left dead, each with why (a later
	// removePaymentMethod or addPaymentMethod of the same customer reached
	// the backend, or the payload expired).
	Skipped []SkippedItem `json:"skipped"`
	Errors  []StoreError  `json:"errors"`
}

// SkippedItem is a dead letter a redelivery left alone.
type SkippedItem struct {
	ItemView
	Reason string `json:"reason"`
	// Code is the Dws-Notify-Error code of the reason
	// (CodeLaterRemoveDelivered, CodeLaterAddDelivered: force would
	// redeliver it; CodePayloadExpired: nothing can).
	Code string `json:"code"`
}
