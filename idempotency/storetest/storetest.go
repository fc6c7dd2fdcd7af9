// Package storetest is the conformance suite for idempotency.Store
// implementations. Every store (the Badger store today, a distributed one
// later) must pass Run:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) idempotency.Store {
//			s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: t.TempDir()})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite runs on the real clock: leases of a few hundred milliseconds and
// retentions of one second, so it takes a few seconds (its slow cases run in
// parallel). Stores may keep times at millisecond precision and retention at
// whole seconds.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// Durations used by the suite.
const (
	longLease     = time.Minute
	longRetention = time.Hour
	shortLease    = 600 * time.Millisecond
	// timeTolerance absorbs stores that keep times in milliseconds.
	timeTolerance = 2 * time.Millisecond
)

// Run runs the conformance suite. open must return a new, empty store for
// each call; Run closes it at the end of the subtest (closing twice must be
// harmless).
func Run(t *testing.T, open func(t *testing.T) idempotency.Store) {
	mk := func(t *testing.T) idempotency.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	cases := []struct {
		name string
		slow bool // waits on the clock: run in parallel with the other slow cases
		fn   func(t *testing.T, s idempotency.Store)
	}{
		{"RecordShape", false, testRecordShape},
		{"ClaimNew", false, testClaimNew},
		{"ClaimInFlightDuplicate", false, testClaimInFlight},
		{"ClaimConflict", false, testClaimConflict},
		{"CompleteAndReplay", false, testCompleteAndReplay},
		{"CompleteWrongToken", false, testCompleteWrongToken},
		{"Release", false, testRelease},
		{"KeysAreDistinct", false, testKeysDistinct},
		{"InvalidArguments", false, testInvalidArguments},
		{"CanceledContext", false, testCanceledContext},
		{"Scan", false, testScan},
		{"ClaimRace", false, func(t *testing.T, s idempotency.Store) { ClaimRace(t, s, 40, 50, 4) }},
		{"Closed", false, testClosed},
		{"LeaseExpiry", true, testLeaseExpiry},
		{"ExpiredLeaseOtherFingerprint", true, testExpiredLeaseOtherFingerprint},
		{"CompleteRacesTakeover", true, testCompleteRacesTakeover},
		{"RetentionInFlight", true, testRetentionInFlight},
		{"RetentionDone", true, testRetentionDone},
		{"CompleteSetsRetention", true, testCompleteSetsRetention},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.slow {
				t.Parallel()
			}
			c.fn(t, mk(t))
		})
	}
}

// K returns a key with the given request id under fixed client and API.
func K(requestID string) idempotency.Key {
	return idempotency.Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: requestID}
}

// FP returns a fingerprint made of b repeated.
func FP(b byte) idempotency.Fingerprint {
	var f idempotency.Fingerprint
	for i := range f {
		f[i] = b
	}
	return f
}

// ClaimComplete is the benchmark loop every store shares: b.N claim +
// complete pairs on unique keys (requestId keyFor(i) for i in 1..b.N),
// from exactly conc goroutines, each completion answered as accepted with
// a 168h retention. It fails b on the first error and returns the wall
// time of the loop, which ran between b.ResetTimer and b.StopTimer.
func ClaimComplete(b *testing.B, s idempotency.Store, conc int, keyFor func(i int64) string) time.Duration {
	return benchLoop(b, conc, func(ctx context.Context, i int64) error {
		k := K(keyFor(i))
		c, err := s.Claim(ctx, k, FP(1), time.Minute, 168*time.Hour)
		if err == nil && c.Status != idempotency.Claimed {
			err = fmt.Errorf("claim of a unique key: %v", c.Status)
		}
		if err == nil {
			err = s.Complete(ctx, k, c.Token, accepted, 168*time.Hour)
		}
		return err
	})
}

// Replays measures what a provider's resend of a completed notification
// costs: b.N claims, from exactly conc goroutines, of the done records of
// keys (taken in turn), each of which must answer Done. It returns the
// wall time.
func Replays(b *testing.B, s idempotency.Store, conc int, keys []string) time.Duration {
	return benchLoop(b, conc, func(ctx context.Context, i int64) error {
		c, err := s.Claim(ctx, K(keys[int(i)%len(keys)]), FP(1), time.Minute, 168*time.Hour)
		if err == nil && c.Status != idempotency.Done {
			err = fmt.Errorf("claim of a done key: %v", c.Status)
		}
		return err
	})
}

// benchLoop runs op for i in 1..b.N from exactly conc goroutines between
// b.ResetTimer and b.StopTimer, fails b on the first error, reports the
// throughput and returns the wall time.
func benchLoop(b *testing.B, conc int, op func(ctx context.Context, i int64) error) time.Duration {
	ctx := b.Context()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := op(ctx, i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if p := failed.Load(); p != nil {
		b.Fatal(*p)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "notifications/s")
	return elapsed
}

var (
	accepted = idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}
	rejected = idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeBusinessRejected, BackendStatus: 409}
)

func claim(t *testing.T, s idempotency.Store, k idempotency.Key, fp idempotency.Fingerprint, lease, retention time.Duration) idempotency.ClaimResult {
	t.Helper()
	res, err := s.Claim(t.Context(), k, fp, lease, retention)
	if err != nil {
		t.Fatalf("Claim(%v): %v", k, err)
	}
	return res
}

func mustClaim(t *testing.T, s idempotency.Store, k idempotency.Key, fp idempotency.Fingerprint) idempotency.ClaimResult {
	t.Helper()
	res := claim(t, s, k, fp, longLease, longRetention)
	if res.Status != idempotency.Claimed || res.Token == 0 {
		t.Fatalf("Claim(%v) = %v token %d, want claimed with a token", k, res.Status, res.Token)
	}
	return res
}

func mustGet(t *testing.T, s idempotency.Store, k idempotency.Key) idempotency.Record {
	t.Helper()
	rec, ok, err := s.Get(t.Context(), k)
	if err != nil || !ok {
		t.Fatalf("Get(%v) = found %v, %v; want a record", k, ok, err)
	}
	return rec
}

func mustAbsent(t *testing.T, s idempotency.Store, k idempotency.Key) {
	t.Helper()
	rec, ok, err := s.Get(t.Context(), k)
	if err != nil || ok {
		t.Fatalf("Get(%v) = %+v, found %v, %v; want absent", k, rec, ok, err)
	}
}

func near(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -timeTolerance && d < timeTolerance
}

// between reports whether t lies in [lo, hi] give or take timeTolerance.
func between(t, lo, hi time.Time) bool {
	return !t.Before(lo.Add(-timeTolerance)) && !t.After(hi.Add(timeTolerance))
}

// checkExpiresAt checks rec.ExpiresAt, when the store reports it, against a
// retention granted between lo and hi (whole-second stores round up).
func checkExpiresAt(t *testing.T, rec idempotency.Record, lo, hi time.Time, retention time.Duration) {
	t.Helper()
	if rec.ExpiresAt.IsZero() {
		return
	}
	if rec.ExpiresAt.Before(lo.Add(retention).Add(-timeTolerance)) || rec.ExpiresAt.After(hi.Add(retention).Add(time.Second)) {
		t.Errorf("ExpiresAt %v outside [%v, %v+1s]", rec.ExpiresAt, lo.Add(retention), hi.Add(retention))
	}
}

// testRecordShape pins the record's fields: records keep the key, the
// fingerprint, the state, the token, the answer and times, and nothing that
// could carry request content (bodies, card fields, headers).
func testRecordShape(t *testing.T, _ idempotency.Store) {
	want := map[reflect.Type][]string{
		reflect.TypeFor[idempotency.Record](): {"Key", "Fingerprint", "State", "Token", "Answer", "ClaimedAt", "LeaseExpiry", "CompletedAt", "ExpiresAt"},
		reflect.TypeFor[idempotency.Answer](): {"ResultCode", "Outcome", "BackendStatus"},
		reflect.TypeFor[idempotency.Key]():    {"ClientID", "API", "RequestID"},
	}
	for typ, fields := range want {
		var got []string
		for f := range typ.Fields() {
			got = append(got, f.Name)
		}
		if !reflect.DeepEqual(got, fields) {
			t.Errorf("%v has fields %v, want exactly %v", typ, got, fields)
		}
	}
}

func testClaimNew(t *testing.T, s idempotency.Store) {
	k := K("new-1")
	before := time.Now()
	res := claim(t, s, k, FP(1), longLease, longRetention)
	after := time.Now()
	if res.Status != idempotency.Claimed || res.Token == 0 {
		t.Fatalf("Claim = %v token %d, want claimed with a non-zero token", res.Status, res.Token)
	}
	for _, rec := range []idempotency.Record{res.Record, mustGet(t, s, k)} {
		if rec.Key != k || rec.Fingerprint != FP(1) || rec.State != idempotency.StateInFlight || rec.Token != res.Token {
			t.Errorf("record = %+v, want in flight under token %d", rec, res.Token)
		}
		if !between(rec.ClaimedAt, before, after) {
			t.Errorf("ClaimedAt %v not in [%v, %v]", rec.ClaimedAt, before, after)
		}
		if !near(rec.LeaseExpiry, rec.ClaimedAt.Add(longLease)) {
			t.Errorf("LeaseExpiry %v, want ClaimedAt+%v = %v", rec.LeaseExpiry, longLease, rec.ClaimedAt.Add(longLease))
		}
		if !rec.CompletedAt.IsZero() || rec.Answer != (idempotency.Answer{}) {
			t.Errorf("in-flight record has completion data: %+v", rec)
		}
		checkExpiresAt(t, rec, before, after, longRetention)
	}
}

func testClaimInFlight(t *testing.T, s idempotency.Store) {
	k := K("dup-1")
	first := mustClaim(t, s, k, FP(1))
	for range 3 {
		res := claim(t, s, k, FP(1), longLease, longRetention)
		if res.Status != idempotency.InFlight {
			t.Fatalf("duplicate Claim = %v, want in_flight", res.Status)
		}
		if res.Token != 0 {
			t.Errorf("in_flight result carries token %d, want 0", res.Token)
		}
		if res.Record.Token != first.Token || res.Record.State != idempotency.StateInFlight || res.Record.Key != k {
			t.Errorf("in_flight record %+v, want the first claim's (token %d)", res.Record, first.Token)
		}
		if !near(res.Record.LeaseExpiry, first.Record.LeaseExpiry) {
			t.Errorf("LeaseExpiry %v, want %v", res.Record.LeaseExpiry, first.Record.LeaseExpiry)
		}
	}
}

func testClaimConflict(t *testing.T, s idempotency.Store) {
	k := K("conflict-1")
	first := mustClaim(t, s, k, FP(1))
	res := claim(t, s, k, FP(2), longLease, longRetention)
	if res.Status != idempotency.Conflict || res.Token != 0 {
		t.Fatalf("Claim with another fingerprint while in flight = %v token %d, want conflict", res.Status, res.Token)
	}
	if res.Record.Fingerprint != FP(1) || res.Record.Token != first.Token {
		t.Errorf("conflict record %+v, want the stored one", res.Record)
	}
	if err := s.Complete(t.Context(), k, first.Token, accepted, longRetention); err != nil {
		t.Fatal(err)
	}
	res = claim(t, s, k, FP(2), longLease, longRetention)
	if res.Status != idempotency.Conflict || res.Record.State != idempotency.StateDone || res.Record.Fingerprint != FP(1) {
		t.Fatalf("Claim with another fingerprint when done = %v %+v, want conflict with the done record", res.Status, res.Record)
	}
	// The conflict must not have changed anything.
	if rec := mustGet(t, s, k); rec.Fingerprint != FP(1) || rec.State != idempotency.StateDone || rec.Answer != accepted {
		t.Errorf("record after conflicts = %+v", rec)
	}
}

func testCompleteAndReplay(t *testing.T, s idempotency.Store) {
	for i, ans := range []idempotency.Answer{accepted, rejected} {
		k := K(fmt.Sprintf("complete-%d", i))
		c := mustClaim(t, s, k, FP(byte(i)))
		before := time.Now()
		if err := s.Complete(t.Context(), k, c.Token, ans, longRetention); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		after := time.Now()
		rec := mustGet(t, s, k)
		if rec.State != idempotency.StateDone || rec.Answer != ans || rec.Token != c.Token || rec.Fingerprint != FP(byte(i)) {
			t.Errorf("record after Complete = %+v, want done with %+v", rec, ans)
		}
		if !between(rec.CompletedAt, before, after) {
			t.Errorf("CompletedAt %v not in [%v, %v]", rec.CompletedAt, before, after)
		}
		if !near(rec.ClaimedAt, c.Record.ClaimedAt) {
			t.Errorf("ClaimedAt changed by Complete: %v -> %v", c.Record.ClaimedAt, rec.ClaimedAt)
		}
		checkExpiresAt(t, rec, before, after, longRetention)
		for range 2 {
			res := claim(t, s, k, FP(byte(i)), longLease, longRetention)
			if res.Status != idempotency.Done || res.Token != 0 || res.Record.Answer != ans || res.Record.State != idempotency.StateDone {
				t.Errorf("Claim after Complete = %v token %d %+v, want done replaying %+v", res.Status, res.Token, res.Record, ans)
			}
		}
	}
}

func testCompleteWrongToken(t *testing.T, s idempotency.Store) {
	ctx := t.Context()
	k := K("wrong-token")
	c := mustClaim(t, s, k, FP(1))
	if err := s.Complete(ctx, k, c.Token+1, accepted, longRetention); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("Complete with a wrong token = %v, want ErrLeaseLost", err)
	}
	if rec := mustGet(t, s, k); rec.State != idempotency.StateInFlight || rec.Token != c.Token {
		t.Fatalf("record after a wrong-token Complete = %+v, want still in flight", rec)
	}
	if err := s.Complete(ctx, K("never-claimed"), 42, accepted, longRetention); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("Complete of an absent key = %v, want ErrLeaseLost", err)
	}
	mustAbsent(t, s, K("never-claimed"))
	if err := s.Complete(ctx, k, c.Token, accepted, longRetention); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, k, c.Token, rejected, longRetention); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("second Complete = %v, want ErrLeaseLost", err)
	}
	if rec := mustGet(t, s, k); rec.Answer != accepted {
		t.Errorf("answer after a second Complete = %+v, want the first %+v", rec.Answer, accepted)
	}
}

func testRelease(t *testing.T, s idempotency.Store) {
	ctx := t.Context()
	k := K("release-1")
	c := mustClaim(t, s, k, FP(1))

	if err := s.Release(ctx, k, c.Token+1); err != nil {
		t.Fatalf("Release with a wrong token = %v, want nil", err)
	}
	if rec := mustGet(t, s, k); rec.Token != c.Token || rec.State != idempotency.StateInFlight {
		t.Fatalf("wrong-token Release changed the record: %+v", rec)
	}
	if err := s.Release(ctx, k, c.Token); err != nil {
		t.Fatalf("Release: %v", err)
	}
	mustAbsent(t, s, k)
	if err := s.Release(ctx, k, c.Token); err != nil {
		t.Errorf("Release of an absent key = %v, want nil", err)
	}
	if err := s.Complete(ctx, k, c.Token, accepted, longRetention); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("Complete after Release = %v, want ErrLeaseLost", err)
	}

	// A released key is new again, whatever the fingerprint of the retry.
	c2 := mustClaim(t, s, k, FP(2))
	if c2.Token == c.Token {
		t.Errorf("new claim reused token %d", c.Token)
	}
	if err := s.Complete(ctx, k, c2.Token, accepted, longRetention); err != nil {
		t.Fatal(err)
	}
	// Release does not undo a completion, even under the completing token.
	if err := s.Release(ctx, k, c2.Token); err != nil {
		t.Errorf("Release of a done record = %v, want nil", err)
	}
	if rec := mustGet(t, s, k); rec.State != idempotency.StateDone || rec.Answer != accepted {
		t.Errorf("record after Release of a done record = %+v, want done", rec)
	}
}

func testKeysDistinct(t *testing.T, s idempotency.Store) {
	keys := []idempotency.Key{
		{ClientID: "a", API: "bc", RequestID: "d"},
		{ClientID: "ab", API: "c", RequestID: "d"},
		{ClientID: "a", API: "b", RequestID: "cd"},
		{ClientID: "a/b", API: "c", RequestID: "d"},
		{ClientID: "a", API: "b/c", RequestID: "d"},
		{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "same"},
		{ClientID: "2188120000000000", API: "removePaymentMethod", RequestID: "same"},
		{ClientID: "2188120000000001", API: "addPaymentMethod", RequestID: "same"},
		{ClientID: "c\x00", API: "\x01", RequestID: "same"},
		{ClientID: "c", API: "\x00\x01", RequestID: "same"},
	}
	tokens := map[idempotency.Key]uint64{}
	for i, k := range keys {
		res := claim(t, s, k, FP(byte(i)), longLease, longRetention)
		if res.Status != idempotency.Claimed {
			t.Fatalf("Claim(%v) = %v, want claimed: keys collide", k, res.Status)
		}
		tokens[k] = res.Token
	}
	for i, k := range keys {
		rec := mustGet(t, s, k)
		if rec.Key != k || rec.Token != tokens[k] || rec.Fingerprint != FP(byte(i)) {
			t.Errorf("Get(%v) = %+v, want its own record", k, rec)
		}
	}
}

func testInvalidArguments(t *testing.T, s idempotency.Store) {
	ctx := t.Context()
	bad := []idempotency.Key{
		{ClientID: "", API: "a", RequestID: "r"},
		{ClientID: "c", API: "", RequestID: "r"},
		{ClientID: "c", API: "a", RequestID: ""},
		{ClientID: "c", API: "a", RequestID: string(make([]byte, idempotency.MaxKeyFieldLen+1))},
	}
	for _, k := range bad {
		if _, err := s.Claim(ctx, k, FP(1), longLease, longRetention); !errors.Is(err, idempotency.ErrInvalidArgument) {
			t.Errorf("Claim(%v) = %v, want ErrInvalidArgument", k, err)
		}
	}
	k := K("invalid-args")
	for _, d := range []struct{ lease, retention time.Duration }{{0, time.Hour}, {-time.Second, time.Hour}, {time.Hour, time.Minute}} {
		if _, err := s.Claim(ctx, k, FP(1), d.lease, d.retention); !errors.Is(err, idempotency.ErrInvalidArgument) {
			t.Errorf("Claim(lease %v, retention %v) = %v, want ErrInvalidArgument", d.lease, d.retention, err)
		}
	}
	mustAbsent(t, s, k)
	c := mustClaim(t, s, k, FP(1))
	for _, a := range []idempotency.Answer{
		{ResultCode: "", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200},
		{ResultCode: "SUCCESS", Outcome: "", BackendStatus: 200},
		{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: -1},
		{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 1000},
		{ResultCode: string(make([]byte, idempotency.MaxResultCodeLen+1)), Outcome: idempotency.OutcomeAccepted, BackendStatus: 200},
	} {
		if err := s.Complete(ctx, k, c.Token, a, longRetention); !errors.Is(err, idempotency.ErrInvalidArgument) {
			t.Errorf("Complete(%+v) = %v, want ErrInvalidArgument", a, err)
		}
	}
	if err := s.Complete(ctx, k, c.Token, accepted, 0); !errors.Is(err, idempotency.ErrInvalidArgument) {
		t.Errorf("Complete with zero retention = %v, want ErrInvalidArgument", err)
	}
	if rec := mustGet(t, s, k); rec.State != idempotency.StateInFlight || rec.Token != c.Token {
		t.Errorf("record after rejected Completes = %+v, want untouched", rec)
	}
}

func testCanceledContext(t *testing.T, s idempotency.Store) {
	k := K("canceled")
	c := mustClaim(t, s, k, FP(1))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Claim(ctx, K("canceled-new"), FP(1), longLease, longRetention); !errors.Is(err, context.Canceled) {
		t.Errorf("Claim = %v, want context.Canceled", err)
	}
	mustAbsent(t, s, K("canceled-new"))
	if err := s.Release(ctx, k, c.Token); !errors.Is(err, context.Canceled) {
		t.Errorf("Release = %v, want context.Canceled", err)
	}
	if err := s.Complete(ctx, k, c.Token, accepted, longRetention); !errors.Is(err, context.Canceled) {
		t.Errorf("Complete = %v, want context.Canceled", err)
	}
	if _, _, err := s.Get(ctx, k); !errors.Is(err, context.Canceled) {
		t.Errorf("Get = %v, want context.Canceled", err)
	}
	if err := s.Scan(ctx, func(idempotency.Record) bool { return true }); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan = %v, want context.Canceled", err)
	}
	if rec := mustGet(t, s, k); rec.State != idempotency.StateInFlight || rec.Token != c.Token {
		t.Errorf("record after canceled calls = %+v, want untouched", rec)
	}
}

func testScan(t *testing.T, s idempotency.Store) {
	ctx := t.Context()
	want := map[idempotency.Key]idempotency.State{}
	for i := range 30 {
		k := K(fmt.Sprintf("scan-%02d", i))
		c := mustClaim(t, s, k, FP(byte(i)))
		switch i % 3 {
		case 0:
			want[k] = idempotency.StateInFlight
		case 1:
			if err := s.Complete(ctx, k, c.Token, accepted, longRetention); err != nil {
				t.Fatal(err)
			}
			want[k] = idempotency.StateDone
		case 2:
			if err := s.Release(ctx, k, c.Token); err != nil {
				t.Fatal(err)
			}
		}
	}
	seen := map[idempotency.Key]int{}
	err := s.Scan(ctx, func(r idempotency.Record) bool {
		seen[r.Key]++
		if st, ok := want[r.Key]; !ok || st != r.State {
			t.Errorf("Scan yielded %v in state %v, want state %v (listed %v)", r.Key, r.State, st, ok)
		}
		if r.State == idempotency.StateDone && r.Answer != accepted {
			t.Errorf("Scan yielded done record %v with answer %+v", r.Key, r.Answer)
		}
		return true
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	for k := range want {
		if seen[k] != 1 {
			t.Errorf("Scan yielded %v %d times, want once", k, seen[k])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("Scan yielded %d keys, want %d", len(seen), len(want))
	}

	calls := 0
	if err := s.Scan(ctx, func(idempotency.Record) bool { calls++; return calls < 5 }); err != nil {
		t.Fatal(err)
	}
	if calls != 5 {
		t.Errorf("Scan called fn %d times after it returned false at the 5th, want 5", calls)
	}

	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	err = s.Scan(cctx, func(idempotency.Record) bool { calls++; cancel(); return true })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("Scan with ctx canceled during the walk = %v after %d calls, want context.Canceled after 1", err, calls)
	}
}

func testClosed(t *testing.T, s idempotency.Store) {
	ctx := t.Context()
	c := mustClaim(t, s, K("closed"), FP(1))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Claim(ctx, K("closed-2"), FP(1), longLease, longRetention); !errors.Is(err, idempotency.ErrClosed) {
		t.Errorf("Claim after Close = %v, want ErrClosed", err)
	}
	if err := s.Complete(ctx, K("closed"), c.Token, accepted, longRetention); !errors.Is(err, idempotency.ErrClosed) {
		t.Errorf("Complete after Close = %v, want ErrClosed", err)
	}
	if err := s.Release(ctx, K("closed"), c.Token); !errors.Is(err, idempotency.ErrClosed) {
		t.Errorf("Release after Close = %v, want ErrClosed", err)
	}
	if _, _, err := s.Get(ctx, K("closed")); !errors.Is(err, idempotency.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if err := s.Scan(ctx, func(idempotency.Record) bool { return true }); !errors.Is(err, idempotency.ErrClosed) {
		t.Errorf("Scan after Close = %v, want ErrClosed", err)
	}
}

// sleepUntil sleeps until the wall clock passes at.
func sleepUntil(at time.Time) {
	time.Sleep(time.Until(at))
}

func testLeaseExpiry(t *testing.T, s idempotency.Store) {
	ctx := t.Context()
	k := K("lease")
	first := claim(t, s, k, FP(1), shortLease, longRetention)
	if first.Status != idempotency.Claimed {
		t.Fatalf("Claim = %v", first.Status)
	}
	exp := first.Record.LeaseExpiry

	// Shortly before the lease ends the claim still holds.
	sleepUntil(exp.Add(-300 * time.Millisecond))
	res := claim(t, s, k, FP(1), shortLease, longRetention)
	if res.Status != idempotency.InFlight || !near(res.Record.LeaseExpiry, exp) {
		t.Fatalf("Claim before the lease ended = %v (lease %v), want in_flight until %v", res.Status, res.Record.LeaseExpiry, exp)
	}

	// After it, the key is claimable again under a new token.
	sleepUntil(exp.Add(50 * time.Millisecond))
	second := claim(t, s, k, FP(1), longLease, longRetention)
	if second.Status != idempotency.Claimed || second.Token == first.Token || second.Token == 0 {
		t.Fatalf("Claim after the lease ended = %v token %d (old %d), want claimed with a new token", second.Status, second.Token, first.Token)
	}
	if !second.Record.ClaimedAt.After(first.Record.ClaimedAt) {
		t.Errorf("ClaimedAt of the takeover %v not after the first %v", second.Record.ClaimedAt, first.Record.ClaimedAt)
	}
	// The first claimer lost its lease: it can neither complete nor release.
	if err := s.Complete(ctx, k, first.Token, accepted, longRetention); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("Complete with the expired token = %v, want ErrLeaseLost", err)
	}
	if err := s.Release(ctx, k, first.Token); err != nil {
		t.Errorf("Release with the expired token = %v, want nil", err)
	}
	if rec := mustGet(t, s, k); rec.State != idempotency.StateInFlight || rec.Token != second.Token {
		t.Fatalf("record = %+v, want in flight under the new token %d", rec, second.Token)
	}
	if err := s.Complete(ctx, k, second.Token, accepted, longRetention); err != nil {
		t.Fatalf("Complete with the new token: %v", err)
	}
}

func testExpiredLeaseOtherFingerprint(t *testing.T, s idempotency.Store) {
	k := K("lease-conflict")
	first := claim(t, s, k, FP(1), shortLease, longRetention)
	sleepUntil(first.Record.LeaseExpiry.Add(50 * time.Millisecond))
	res := claim(t, s, k, FP(2), longLease, longRetention)
	if res.Status != idempotency.Conflict || res.Record.Token != first.Token {
		t.Fatalf("Claim with another fingerprint after the lease ended = %v %+v, want conflict", res.Status, res.Record)
	}
}

// testCompleteRacesTakeover races the late Complete of a claimer whose lease
// ended against a new claimer: exactly one of them may win.
func testCompleteRacesTakeover(t *testing.T, s idempotency.Store) {
	ctx := t.Context()
	const rounds = 20
	firsts := make([]idempotency.ClaimResult, rounds)
	for i := range rounds {
		firsts[i] = claim(t, s, K(fmt.Sprintf("takeover-%d", i)), FP(1), shortLease, longRetention)
	}
	sleepUntil(firsts[rounds-1].Record.LeaseExpiry.Add(50 * time.Millisecond))
	for i := range rounds {
		k := K(fmt.Sprintf("takeover-%d", i))
		var (
			wg        sync.WaitGroup
			start     = make(chan struct{})
			complErr  error
			claimRes  idempotency.ClaimResult
			claimErr  error
			lateToken = firsts[i].Token
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			complErr = s.Complete(ctx, k, lateToken, accepted, longRetention)
		}()
		go func() {
			defer wg.Done()
			<-start
			claimRes, claimErr = s.Claim(ctx, k, FP(1), longLease, longRetention)
		}()
		close(start)
		wg.Wait()
		if claimErr != nil {
			t.Fatalf("Claim: %v", claimErr)
		}
		rec := mustGet(t, s, k)
		switch {
		case complErr == nil && claimRes.Status == idempotency.Done:
			if rec.State != idempotency.StateDone || rec.Token != lateToken {
				t.Errorf("late Complete won but record = %+v", rec)
			}
		case errors.Is(complErr, idempotency.ErrLeaseLost) && claimRes.Status == idempotency.Claimed:
			if rec.State != idempotency.StateInFlight || rec.Token != claimRes.Token {
				t.Errorf("takeover won but record = %+v", rec)
			}
		default:
			t.Errorf("round %d: Complete = %v and Claim = %v: want exactly one winner", i, complErr, claimRes.Status)
		}
	}
}

// waitAbsent polls until k is gone or deadline passes and returns when it
// went.
func waitAbsent(t *testing.T, s idempotency.Store, k idempotency.Key, deadline time.Time) time.Time {
	t.Helper()
	for {
		_, ok, err := s.Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if !ok {
			return now
		}
		if now.After(deadline) {
			t.Fatalf("%v still present at %v", k, now)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testRetentionInFlight(t *testing.T, s idempotency.Store) {
	k := K("retention-inflight")
	const retention = time.Second
	c := claim(t, s, k, FP(1), 200*time.Millisecond, retention)
	start := c.Record.ClaimedAt
	gone := waitAbsent(t, s, k, start.Add(retention+2500*time.Millisecond))
	if gone.Sub(start) < retention {
		t.Errorf("record gone after %v, before its retention %v", gone.Sub(start), retention)
	}
	res := claim(t, s, k, FP(2), longLease, longRetention)
	if res.Status != idempotency.Claimed {
		t.Errorf("Claim after retention = %v, want claimed (the key is forgotten)", res.Status)
	}
}

func testRetentionDone(t *testing.T, s idempotency.Store) {
	ctx := t.Context()
	k := K("retention-done")
	const retention = time.Second
	c := claim(t, s, k, FP(1), 200*time.Millisecond, retention)
	completed := time.Now()
	if err := s.Complete(ctx, k, c.Token, accepted, retention); err != nil {
		t.Fatal(err)
	}
	if res := claim(t, s, k, FP(1), longLease, longRetention); res.Status != idempotency.Done {
		t.Fatalf("Claim right after Complete = %v, want done", res.Status)
	}
	gone := waitAbsent(t, s, k, completed.Add(retention+2500*time.Millisecond))
	if gone.Sub(completed) < retention {
		t.Errorf("done record gone after %v, before its retention %v", gone.Sub(completed), retention)
	}
	found := false
	if err := s.Scan(ctx, func(r idempotency.Record) bool { found = found || r.Key == k; return true }); err != nil {
		t.Fatal(err)
	}
	if found {
		t.Errorf("Scan still yields the expired record")
	}
	if res := claim(t, s, k, FP(1), longLease, longRetention); res.Status != idempotency.Claimed {
		t.Errorf("Claim after retention = %v, want claimed", res.Status)
	}
}

func testCompleteSetsRetention(t *testing.T, s idempotency.Store) {
	ctx := t.Context()
	k := K("retention-extended")
	c := claim(t, s, k, FP(1), 200*time.Millisecond, time.Second)
	if err := s.Complete(ctx, k, c.Token, accepted, longRetention); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2200 * time.Millisecond)
	rec := mustGet(t, s, k)
	if rec.State != idempotency.StateDone {
		t.Errorf("record = %+v, want done: Complete's retention replaces the claim's", rec)
	}
}

// ClaimRace makes claimers goroutines claim the same key at once, for keys
// keys, running up to parallel keys at a time. For every key exactly one
// claimer must get Claimed and all the others InFlight with the winner's
// token; no call may fail.
func ClaimRace(t *testing.T, s idempotency.Store, keys, claimers, parallel int) {
	t.Helper()
	ctx := t.Context()
	prefix := fmt.Sprintf("race-%d-", time.Now().UnixNano())
	sem := make(chan struct{}, parallel)
	var (
		mu       sync.Mutex
		failures int
		keyWG    sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures++
		if failures <= 10 {
			t.Errorf(format, args...)
		}
	}
	for i := range keys {
		sem <- struct{}{}
		keyWG.Add(1)
		go func() {
			defer func() { <-sem; keyWG.Done() }()
			k := K(fmt.Sprintf("%s%d", prefix, i))
			results := make([]idempotency.ClaimResult, claimers)
			errs := make([]error, claimers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for j := range claimers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results[j], errs[j] = s.Claim(ctx, k, FP(7), longLease, longRetention)
				}()
			}
			close(start)
			wg.Wait()
			var winners []uint64
			for j, r := range results {
				if errs[j] != nil {
					fail("key %v claimer %d: %v", k, j, errs[j])
					continue
				}
				if r.Status == idempotency.Claimed {
					winners = append(winners, r.Token)
				}
			}
			if len(winners) != 1 {
				fail("key %v: %d claimers got Claimed, want exactly 1", k, len(winners))
				return
			}
			for j, r := range results {
				if errs[j] == nil && r.Status != idempotency.Claimed && (r.Status != idempotency.InFlight || r.Record.Token != winners[0]) {
					fail("key %v claimer %d: %v with token %d, want in_flight under the winner's token %d", k, j, r.Status, r.Record.Token, winners[0])
				}
			}
		}()
	}
	keyWG.Wait()
	if failures > 10 {
		t.Errorf("... %d failures in all", failures)
	}
}
