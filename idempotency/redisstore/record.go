package redisstore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// Record layout: one HASH per key, with one-letter field names.
//
//	v  format version, "1"
//	s  state: "1" in flight, "2" done
//	f  fingerprint, 32 raw bytes
//	t  claim token, 16 lower-case hex digits (a non-zero uint64)
//	c  ClaimedAt, Unix microseconds (server clock), decimal
//	l  LeaseExpiry, Unix microseconds (server clock), decimal
//	-- done records only --
//	d  CompletedAt, Unix microseconds (server clock), decimal
//	o  outcome, e.g. "accepted"
//	b  backend status, decimal
//	r  result code, e.g. "SUCCESS"
//	n  completion nonce, 16 lower-case hex digits
//
// An in-flight record has exactly the first six fields, a done record all
// eleven. The key's TTL is the retention. Nothing else is stored: no body,
// no card fields, no headers.
const formatVersion = "1"

// Script statuses, the first element of every script reply.
const (
	stClaimed  = "claimed"
	stInFlight = "in_flight"
	stDone     = "done"
	stConflict = "conflict"
	stCorrupt  = "corrupt"
	stFound    = "found"
	stAbsent   = "absent"
	stOK       = "ok"
	stLost     = "lost"
	stReleased = "released"
	stKept     = "kept"
)

// recordReplyLen is the length of a script reply that carries a record:
// status, now, pttl and the eleven fields.
const recordReplyLen = 3 + 11

// errUnexpectedReply means a script answered in a shape this code does not
// know: a protocol or deployment problem, not a corrupt record.
var errUnexpectedReply = errors.New("redisstore: unexpected script reply")

// replyStatus returns the status of a script reply and the reply as a
// slice. It never panics, whatever v is.
func replyStatus(v any) (string, []any, error) {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return "", nil, fmt.Errorf("%w: %T", errUnexpectedReply, v)
	}
	st, ok := a[0].(string)
	if !ok {
		return "", nil, fmt.Errorf("%w: status of type %T", errUnexpectedReply, a[0])
	}
	return st, a, nil
}

// corruptError builds the error for a {"corrupt", reason} reply.
func corruptError(key idempotency.Key, a []any) error {
	why := "unknown reason"
	if len(a) > 1 {
		if s, ok := a[1].(string); ok && s != "" {
			why = s
		}
	}
	return fmt.Errorf("redisstore: record %v: %w: %s", key, idempotency.ErrCorruptRecord, why)
}

// decodeRecord builds the record of key from a script reply that carries
// one (see recordReplyLen). Every field is checked: the error wraps
// idempotency.ErrCorruptRecord when the stored record is not one this
// package writes.
func decodeRecord(key idempotency.Key, a []any) (idempotency.Record, error) {
	rec, err := decodeFields(key, a)
	if err != nil {
		return idempotency.Record{}, fmt.Errorf("redisstore: record %v: %w", key, err)
	}
	return rec, nil
}

func decodeFields(key idempotency.Key, a []any) (idempotency.Record, error) {
	if len(a) != recordReplyLen {
		return idempotency.Record{}, fmt.Errorf("%w: %d elements", errUnexpectedReply, len(a))
	}
	str := func(i int) (string, bool) {
		s, ok := a[i].(string)
		return s, ok
	}
	corrupt := func(what string) error {
		return fmt.Errorf("%w: %s", idempotency.ErrCorruptRecord, what)
	}
	nowStr, ok1 := str(1)
	pttlStr, ok2 := str(2)
	now, err1 := parseMicros(nowStr)
	pttl, err2 := strconv.ParseInt(pttlStr, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return idempotency.Record{}, fmt.Errorf("%w: bad time or TTL", errUnexpectedReply)
	}

	f := a[3:]
	rec := idempotency.Record{Key: key}
	if v, _ := f[0].(string); v != formatVersion {
		return rec, corrupt("unknown format version")
	}
	switch s, _ := f[1].(string); s {
	case "1":
		rec.State = idempotency.StateInFlight
	case "2":
		rec.State = idempotency.StateDone
	default:
		return rec, corrupt("unknown state")
	}
	fp, _ := f[2].(string)
	if len(fp) != len(rec.Fingerprint) {
		return rec, corrupt("bad fingerprint")
	}
	copy(rec.Fingerprint[:], fp)
	var ok bool
	if rec.Token, ok = fieldHex16(f[3]); !ok || rec.Token == 0 {
		return rec, corrupt("bad token")
	}
	var err error
	if rec.ClaimedAt, err = fieldMicros(f[4]); err != nil {
		return rec, corrupt("bad claim time")
	}
	if rec.LeaseExpiry, err = fieldMicros(f[5]); err != nil {
		return rec, corrupt("bad lease expiry")
	}
	done := f[6:]
	if rec.State == idempotency.StateInFlight {
		for _, x := range done {
			if !absent(x) {
				return rec, corrupt("in-flight record with completion fields")
			}
		}
	} else {
		if rec.CompletedAt, err = fieldMicros(done[0]); err != nil {
			return rec, corrupt("bad completion time")
		}
		o, ok1 := done[1].(string)
		b, ok2 := done[2].(string)
		r, ok3 := done[3].(string)
		_, ok4 := fieldHex16(done[4])
		status, err := strconv.ParseUint(b, 10, 16)
		if !ok1 || !ok2 || !ok3 || !ok4 || err != nil || !isDecimal(b) {
			return rec, corrupt("bad answer")
		}
		rec.Answer = idempotency.Answer{ResultCode: r, Outcome: idempotency.Outcome(o), BackendStatus: int(status)}
		if err := idempotency.ValidateAnswer(rec.Answer); err != nil {
			return idempotency.Record{Key: key}, corrupt(err.Error())
		}
	}
	if pttl >= 0 {
		rec.ExpiresAt = now.Add(time.Duration(pttl) * time.Millisecond)
	}
	return rec, nil
}

// absent reports whether a reply element stands for a missing field: HMGET
// gives Lua false for it, which Redis 7.0 sends as a null over RESP2 and
// RESP3 alike; a boolean false (RESP3's own type for Lua false) is accepted
// too, so the decoding does not depend on how a server converts it.
func absent(x any) bool {
	return x == nil || x == false
}

// isDecimal reports whether s is a non-empty string of ASCII digits.
func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseMicros parses a decimal count of Unix microseconds written by the
// scripts. Zero and anything that is not plain digits are errors.
func parseMicros(s string) (time.Time, error) {
	if !isDecimal(s) || len(s) > 16 {
		return time.Time{}, errors.New("not a timestamp")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}, errors.New("not a timestamp")
	}
	return time.UnixMicro(n), nil
}

func fieldMicros(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errors.New("missing")
	}
	return parseMicros(s)
}

// formatHex16 writes a token or nonce as the scripts store it.
func formatHex16(v uint64) string {
	var b [8]byte
	for i := range b {
		b[i] = byte(v >> (56 - 8*i))
	}
	return hex.EncodeToString(b[:])
}

// fieldHex16 parses a reply element holding 16 lower-case hex digits.
func fieldHex16(v any) (uint64, bool) {
	s, ok := v.(string)
	if !ok {
		return 0, false
	}
	return parseHex16(s)
}

// parseHex16 parses 16 lower-case hex digits.
func parseHex16(s string) (uint64, bool) {
	if len(s) != 16 {
		return 0, false
	}
	var v uint64
	for i := 0; i < 16; i++ {
		c := s[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}
