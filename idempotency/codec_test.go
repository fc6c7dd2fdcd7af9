package idempotency

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func sampleRecords() []Record {
	claimed := time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.UTC)
	fp := Fingerprint{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}
	base := Record{Fingerprint: fp, Token: 0xdeadbeefcafef00d, ClaimedAt: claimed, LeaseExpiry: claimed.Add(30 * time.Second)}
	inflight := base
	inflight.State = StateInFlight
	done := func(a Answer) Record {
		r := base
		r.State = StateDone
		r.Answer = a
		r.CompletedAt = claimed.Add(1500 * time.Millisecond)
		return r
	}
	return []Record{
		inflight,
		done(Answer{ResultCode: "SUCCESS", Outcome: OutcomeAccepted, BackendStatus: 200}),
		done(Answer{ResultCode: "SUCCESS", Outcome: OutcomeBusinessRejected, BackendStatus: 409}),
		done(Answer{ResultCode: "SUCCESS", Outcome: "manual_override", BackendStatus: 0}),
		done(Answer{ResultCode: "X", Outcome: OutcomeAccepted, BackendStatus: 999}),
	}
}

func TestValueRoundTrip(t *testing.T) {
	for _, r := range sampleRecords() {
		b := appendValue(nil, &r)
		var got Record
		if err := decodeValue(b, &got); err != nil {
			t.Fatalf("decode(%+v): %v", r, err)
		}
		// Times come back without location or monotonic reading; compare instants.
		if got.State != r.State || got.Fingerprint != r.Fingerprint || got.Token != r.Token || got.Answer != r.Answer ||
			!got.ClaimedAt.Equal(r.ClaimedAt) || !got.LeaseExpiry.Equal(r.LeaseExpiry) || !got.CompletedAt.Equal(r.CompletedAt) {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
		if r.State == StateInFlight && !got.CompletedAt.IsZero() {
			t.Errorf("in-flight record decoded with CompletedAt %v", got.CompletedAt)
		}
	}
}

func TestValueSizes(t *testing.T) {
	recs := sampleRecords()
	if n := len(appendValue(nil, &recs[0])); n != inFlightValueLen {
		t.Errorf("in-flight value is %d bytes, want 58", n)
	}
	if n := len(appendValue(nil, &recs[1])); n != 77 {
		t.Errorf("done SUCCESS/200 value is %d bytes, want 77", n)
	}
	longest := recs[1]
	longest.Answer = Answer{
		ResultCode:    strings.Repeat("C", MaxResultCodeLen),
		Outcome:       Outcome(strings.Repeat("o", MaxOutcomeLen)),
		BackendStatus: 999,
	}
	if n := len(appendValue(nil, &longest)); n != maxValueLen {
		t.Errorf("longest value is %d bytes, maxValueLen says %d", n, maxValueLen)
	}
	if maxValueLen >= 1<<10 {
		t.Errorf("maxValueLen %d reaches the profile's value threshold", maxValueLen)
	}
	k := Key{ClientID: "2188120000000000", API: "removePaymentMethod", RequestID: "2025051911121310000000000000000000000000000000000000000000000001"}
	if n := len(appendKey(nil, k)); n != 2+3+16+19+64 {
		t.Errorf("key of a 64-char requestId is %d bytes, want %d", n, 2+3+16+19+64)
	}
}

// TestValueRejectsGarbage feeds every truncation, every single-byte
// extension and targeted corruptions of valid values to the decoder.
func TestValueRejectsGarbage(t *testing.T) {
	for _, r := range sampleRecords() {
		valid := appendValue(nil, &r)
		for n := range len(valid) {
			var got Record
			if err := decodeValue(valid[:n], &got); !errors.Is(err, ErrCorruptRecord) {
				t.Errorf("state %v: prefix of %d/%d bytes decoded (err %v)", r.State, n, len(valid), err)
			}
		}
		var got Record
		if err := decodeValue(append(bytes.Clone(valid), 0), &got); !errors.Is(err, ErrCorruptRecord) {
			t.Errorf("state %v: trailing byte accepted (err %v)", r.State, err)
		}
		corrupt := func(name string, i int, v byte) {
			b := bytes.Clone(valid)
			b[i] = v
			if err := decodeValue(b, &got); !errors.Is(err, ErrCorruptRecord) {
				t.Errorf("state %v: %s accepted (err %v)", r.State, name, err)
			}
		}
		corrupt("version 0", 0, 0)
		corrupt("version 2", 0, 2)
		corrupt("state 0", 1, 0)
		corrupt("state 3", 1, 3)
		b := bytes.Clone(valid)
		clear(b[34:42])
		if err := decodeValue(b, &got); !errors.Is(err, ErrCorruptRecord) {
			t.Errorf("state %v: zero token accepted (err %v)", r.State, err)
		}
		if r.State == StateDone {
			corrupt("outcome code 3", inFlightValueLen+8, 3)
		}
	}
	// Done records whose fields are out of range.
	recs := sampleRecords()
	done := recs[1]
	b := appendValue(nil, &done)
	// Backend status 1000 (uvarint 0xe8 0x07) in place of 200 (0xc8 0x01).
	i := inFlightValueLen + 9
	if b[i] != 0xc8 || b[i+1] != 0x01 {
		t.Fatalf("unexpected status encoding % x", b[i:i+2])
	}
	b[i], b[i+1] = 0xe8, 0x07
	if err := decodeValue(b, &Record{}); !errors.Is(err, ErrCorruptRecord) {
		t.Errorf("backend status 1000 accepted (err %v)", err)
	}
	// Empty result code.
	b = appendValue(nil, &done)
	b = append(b[:inFlightValueLen+11], 0)
	if err := decodeValue(b, &Record{}); !errors.Is(err, ErrCorruptRecord) {
		t.Errorf("empty result code accepted (err %v)", err)
	}
	// Random bytes never panic and are nearly always rejected.
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for range 20000 {
		b := make([]byte, rng.IntN(100))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if decodeValue(b, &Record{}) == nil {
			accepted++
		}
	}
	if accepted != 0 {
		t.Errorf("%d random values decoded", accepted)
	}
}

func FuzzDecodeValue(f *testing.F) {
	for _, r := range sampleRecords() {
		f.Add(appendValue(nil, &r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := decodeValue(b, &r); err != nil {
			return
		}
		// Whatever decodes must encode back to the same bytes.
		if again := appendValue(nil, &r); !bytes.Equal(again, b) {
			t.Fatalf("decode/encode not stable:\n% x\n% x", b, again)
		}
	})
}

func TestKeyEncoding(t *testing.T) {
	keys := []Key{
		{"a", "bc", "d"}, {"ab", "c", "d"}, {"a", "b", "cd"}, {"a", "b", "c\x00d"},
		{"\x01a", "b", "c"}, {string(make([]byte, 200)), "x", "y"},
		{"2188120000000000", "addPaymentMethod", "20250519111213"},
	}
	seen := map[string]Key{}
	for _, k := range keys {
		b := appendKey(nil, k)
		if prev, dup := seen[string(b)]; dup {
			t.Errorf("%v and %v encode the same", prev, k)
		}
		seen[string(b)] = k
		got, err := decodeKey(b)
		if err != nil || got != k {
			t.Errorf("decodeKey(appendKey(%v)) = %v, %v", k, got, err)
		}
		for n := range len(b) {
			if _, err := decodeKey(b[:n]); err == nil {
				t.Errorf("prefix %d of the key of %v decoded", n, k)
			}
		}
		if _, err := decodeKey(append(bytes.Clone(b), 'x')); err == nil {
			t.Errorf("key of %v with a trailing byte decoded", k)
		}
	}
	if _, err := decodeKey([]byte{'j', 1, 1, 'a', 1, 'b', 1, 'c'}); err == nil {
		t.Error("key with a foreign prefix decoded")
	}
}
