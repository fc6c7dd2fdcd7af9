package idempotency

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Storage encoding.
//
// Keys: recordKeyPrefix, then ClientID, API and RequestID, each preceded by
// its length as a uvarint. The length prefixes make the encoding injective:
// ("a","bc","d") and ("ab","c","d") can never produce the same bytes.
//
// Values (version 1), all integers big-endian:
//
//	[0]      version = 1
//	[1]      state: 1 in flight, 2 done
//	[2:34]   fingerprint
//	[34:42]  token (non-zero)
//	[42:50]  ClaimedAt, Unix nanoseconds (0 = zero time)
//	[50:58]  LeaseExpiry, Unix nanoseconds
//	-- done records only --
//	[58:66]  CompletedAt, Unix nanoseconds
//	[66]     outcome: 1 accepted, 2 business_rejected, 0 = a string follows
//	         (uvarint length + bytes)
//	         backend status as a uvarint
//	         result code: uvarint length + bytes
//
// An in-flight record is exactly 58 bytes; a done record that answered
// SUCCESS after a 2xx is 76 bytes. Decoding rejects unknown versions and
// states, truncation, trailing bytes and out-of-range fields.

const (
	valueVersion1 = 1

	inFlightValueLen = 58
	// maxValueLen is the longest value appendValue makes: a done record
	// with an outcome and a result code of the maximum lengths and a
	// three-digit status.
	maxValueLen = inFlightValueLen + 8 + 1 + 1 + MaxOutcomeLen + 2 + 1 + MaxResultCodeLen

	outcomeCodeString           = 0
	outcomeCodeAccepted         = 1
	outcomeCodeBusinessRejected = 2
)

// recordKeyPrefix starts every record key, so other kinds of keys can be
// added to the same DB later and Scan can iterate records only.
var recordKeyPrefix = []byte{'i', 1}

// appendKey appends the storage key of k to dst.
func appendKey(dst []byte, k Key) []byte {
	dst = append(dst, recordKeyPrefix...)
	for _, f := range [...]string{k.ClientID, k.API, k.RequestID} {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// decodeKey parses a storage key made by appendKey.
func decodeKey(b []byte) (Key, error) {
	if len(b) < len(recordKeyPrefix) || string(b[:len(recordKeyPrefix)]) != string(recordKeyPrefix) {
		return Key{}, fmt.Errorf("%w: key without record prefix", ErrCorruptRecord)
	}
	b = b[len(recordKeyPrefix):]
	var fields [3]string
	for i := range fields {
		f, w, err := readString(b, MaxKeyFieldLen)
		if err != nil {
			return Key{}, err
		}
		fields[i], b = f, b[w:]
	}
	if len(b) != 0 {
		return Key{}, fmt.Errorf("%w: trailing bytes in key", ErrCorruptRecord)
	}
	return Key{ClientID: fields[0], API: fields[1], RequestID: fields[2]}, nil
}

func appendTime(dst []byte, t time.Time) []byte {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}

func readTime(b []byte) time.Time {
	n := int64(binary.BigEndian.Uint64(b))
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// appendValue appends the storage value of r to dst. r must hold a valid
// state; a done record must hold a valid answer (see ValidateAnswer).
func appendValue(dst []byte, r *Record) []byte {
	dst = append(dst, valueVersion1, byte(r.State))
	dst = append(dst, r.Fingerprint[:]...)
	dst = binary.BigEndian.AppendUint64(dst, r.Token)
	dst = appendTime(dst, r.ClaimedAt)
	dst = appendTime(dst, r.LeaseExpiry)
	if r.State != StateDone {
		return dst
	}
	dst = appendTime(dst, r.CompletedAt)
	switch r.Answer.Outcome {
	case OutcomeAccepted:
		dst = append(dst, outcomeCodeAccepted)
	case OutcomeBusinessRejected:
		dst = append(dst, outcomeCodeBusinessRejected)
	default:
		dst = append(dst, outcomeCodeString)
		dst = binary.AppendUvarint(dst, uint64(len(r.Answer.Outcome)))
		dst = append(dst, r.Answer.Outcome...)
	}
	dst = binary.AppendUvarint(dst, uint64(r.Answer.BackendStatus))
	dst = binary.AppendUvarint(dst, uint64(len(r.Answer.ResultCode)))
	dst = append(dst, r.Answer.ResultCode...)
	return dst
}

// decodeValue parses a storage value into r (all fields but Key and
// ExpiresAt). It never retains b.
func decodeValue(b []byte, r *Record) error {
	if len(b) < inFlightValueLen {
		return fmt.Errorf("%w: value of %d bytes is too short", ErrCorruptRecord, len(b))
	}
	if b[0] != valueVersion1 {
		return fmt.Errorf("%w: unknown value version %d", ErrCorruptRecord, b[0])
	}
	r.State = State(b[1])
	copy(r.Fingerprint[:], b[2:34])
	r.Token = binary.BigEndian.Uint64(b[34:42])
	r.ClaimedAt = readTime(b[42:50])
	r.LeaseExpiry = readTime(b[50:58])
	r.CompletedAt = time.Time{}
	r.Answer = Answer{}
	if r.Token == 0 {
		return fmt.Errorf("%w: zero token", ErrCorruptRecord)
	}
	switch r.State {
	case StateInFlight:
		if len(b) != inFlightValueLen {
			return fmt.Errorf("%w: trailing bytes after in-flight record", ErrCorruptRecord)
		}
		return nil
	case StateDone:
	default:
		return fmt.Errorf("%w: unknown state %d", ErrCorruptRecord, b[1])
	}

	rest := b[inFlightValueLen:]
	if len(rest) < 9 {
		return fmt.Errorf("%w: truncated done record", ErrCorruptRecord)
	}
	r.CompletedAt = readTime(rest[:8])
	code := rest[8]
	rest = rest[9:]
	switch code {
	case outcomeCodeAccepted:
		r.Answer.Outcome = OutcomeAccepted
	case outcomeCodeBusinessRejected:
		r.Answer.Outcome = OutcomeBusinessRejected
	case outcomeCodeString:
		s, n, err := readString(rest, MaxOutcomeLen)
		if err != nil {
			return err
		}
		r.Answer.Outcome = Outcome(s)
		rest = rest[n:]
	default:
		return fmt.Errorf("%w: unknown outcome code %d", ErrCorruptRecord, code)
	}
	status, n := uvarint(rest)
	if n <= 0 || status > 999 {
		return fmt.Errorf("%w: bad backend status", ErrCorruptRecord)
	}
	r.Answer.BackendStatus = int(status)
	rest = rest[n:]
	s, n, err := readString(rest, MaxResultCodeLen)
	if err != nil {
		return err
	}
	r.Answer.ResultCode = s
	if len(rest) != n {
		return fmt.Errorf("%w: trailing bytes after done record", ErrCorruptRecord)
	}
	if err := ValidateAnswer(r.Answer); err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptRecord, err)
	}
	return nil
}

// readString reads a uvarint-length-prefixed string of at most max bytes and
// returns it with the number of bytes consumed.
func readString(b []byte, max int) (string, int, error) {
	l, w := uvarint(b)
	if w <= 0 || l > uint64(max) || l > uint64(len(b)-w) {
		return "", 0, fmt.Errorf("%w: bad string length", ErrCorruptRecord)
	}
	return string(b[w : w+int(l)]), w + int(l), nil
}

// uvarint is binary.Uvarint that also refuses a value in more bytes than it
// needs (such as c8 00 for 48): appendValue and appendKey never write one,
// so it can only be corruption, and accepting it would let two byte strings
// decode to the same record.
func uvarint(b []byte) (uint64, int) {
	v, w := binary.Uvarint(b)
	if w > 1 && b[w-1] == 0 {
		return 0, 0
	}
	return v, w
}
