package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
)

// awkwardKeys are keys whose fields contain every character the encoding
// treats specially, plus plain ones.
var awkwardKeys = []idempotency.Key{
	{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "2019112811234500011"},
	{ClientID: "a:b", API: "c", RequestID: "d"},
	{ClientID: "a", API: "b:c", RequestID: "d"},
	{ClientID: "a", API: "b", RequestID: "c:d"},
	{ClientID: "a", API: "b", RequestID: ":::"},
	{ClientID: "%", API: "%3A", RequestID: "%%3A%"},
	{ClientID: "{tag}", API: "}{", RequestID: "x{y}z"},
	{ClientID: "*", API: "?[a-z]", RequestID: `back\slash`},
	{ClientID: "with space", API: "tab\there", RequestID: "line\nbreak\r\n"},
	{ClientID: "nul\x00byte", API: "\x01", RequestID: "\x7f\xff"},
	{ClientID: "ünïcödé", API: "日本語", RequestID: "emoji-😀"},
	{ClientID: strings.Repeat(":", idempotency.MaxKeyFieldLen), API: strings.Repeat("%", idempotency.MaxKeyFieldLen), RequestID: strings.Repeat("z", idempotency.MaxKeyFieldLen)},
	// Pairs that a naive "join with ':'" would merge.
	{ClientID: "a", API: "bc", RequestID: "d"},
	{ClientID: "ab", API: "c", RequestID: "d"},
	{ClientID: "a:b", API: "c", RequestID: "d:e"},
	{ClientID: "a", API: "b:c:d", RequestID: "e"},
}

func TestRecordKeyReadable(t *testing.T) {
	for _, c := range []struct {
		key  idempotency.Key
		want string
	}{
		{idempotency.Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "2019112811234500011"},
			"dws_notify:r:2188120000000000:addPaymentMethod:2019112811234500011"},
		{idempotency.Key{ClientID: "c-1_x.y", API: "removePaymentMethod", RequestID: "a-b~c"},
			"dws_notify:r:c-1_x.y:removePaymentMethod:a-b~c"},
		{idempotency.Key{ClientID: "a:b", API: "%", RequestID: "x y{z}"},
			"dws_notify:r:a%3Ab:%25:x%20y%7Bz%7D"},
		{idempotency.Key{ClientID: "*", API: "?[]", RequestID: "\\\x00é"},
			"dws_notify:r:%2A:%3F%5B%5D:%5C%00%C3%A9"},
	} {
		if got := recordKey(DefaultPrefix, c.key); got != c.want {
			t.Errorf("recordKey(%v) = %q, want %q", c.key, got, c.want)
		}
	}
}

func TestRecordKeyRoundTripAndInjective(t *testing.T) {
	names := map[string]idempotency.Key{}
	for _, prefix := range []string{DefaultPrefix, "", "p:", "glob*?[x]\\:", "{hash}:"} {
		for _, k := range awkwardKeys {
			name := recordKey(prefix, k)
			got, err := decodeRecordKey(prefix, name)
			if err != nil || got != k {
				t.Errorf("decode(recordKey(%q, %v)) = %v, %v", prefix, k, got, err)
			}
			rest := strings.TrimPrefix(name, prefix+recordMarker)
			if strings.Count(rest, ":") != 2 || strings.ContainsAny(rest, "{}*?[]\\ \x00\n") {
				t.Errorf("record key %q: the fields part %q has separators or specials in it", name, rest)
			}
			if prefix == DefaultPrefix {
				if other, dup := names[name]; dup {
					t.Errorf("keys %v and %v share the name %q", other, k, name)
				}
				names[name] = k
			}
		}
	}
}

func TestDecodeRecordKeyRejects(t *testing.T) {
	p := DefaultPrefix
	for _, name := range []string{
		"other:r:a:b:c",       // another prefix
		p + "x:a:b:c",         // not a record key
		p + "r:a:b",           // two fields
		p + "r:a:b:c:d",       // four fields
		p + "r::b:c",          // empty field
		p + "r:a%3a:b:c",      // lower-case hex
		p + "r:a%3:b:c",       // truncated escape
		p + "r:a%:b:c",        // truncated escape
		p + "r:%41:b:c",       // escaped byte that needs no escape ('A')
		p + "r:a b:c:d",       // raw space
		p + "r:a{b}:c:d",      // raw hash-tag brace
		p + "r:a*:c:d",        // raw glob character
		p + "r:a\x00:c:d",     // raw control byte
		p + "r:a:b:c\xc3\xa9", // raw non-ASCII
		p + "r:" + strings.Repeat("x", idempotency.MaxKeyFieldLen+1) + ":b:c",
	} {
		if k, err := decodeRecordKey(p, name); !errors.Is(err, idempotency.ErrCorruptRecord) {
			t.Errorf("decodeRecordKey(%q) = %v, %v; want ErrCorruptRecord", name, k, err)
		}
	}
}

// FuzzRecordKey: every valid key survives the round trip, and its name has
// exactly two separators after the prefix.
func FuzzRecordKey(f *testing.F) {
	for _, k := range awkwardKeys[:11] {
		f.Add(k.ClientID, k.API, k.RequestID)
	}
	f.Fuzz(func(t *testing.T, c, a, r string) {
		k := idempotency.Key{ClientID: c, API: a, RequestID: r}
		if idempotency.ValidateKey(k) != nil {
			return
		}
		name := recordKey(DefaultPrefix, k)
		got, err := decodeRecordKey(DefaultPrefix, name)
		if err != nil || got != k {
			t.Fatalf("round trip of %v: %v, %v (name %q)", k, got, err, name)
		}
		if n := strings.Count(name[len(DefaultPrefix)+len(recordMarker):], ":"); n != 2 {
			t.Fatalf("name %q has %d separators", name, n)
		}
	})
}

// FuzzDecodeRecordKey: any name either fails with ErrCorruptRecord or
// decodes to a key whose name it is (one key, one name).
func FuzzDecodeRecordKey(f *testing.F) {
	for _, k := range awkwardKeys[:11] {
		f.Add(recordKey(DefaultPrefix, k))
	}
	f.Add(DefaultPrefix + "r:%41:b:c")
	f.Fuzz(func(t *testing.T, name string) {
		k, err := decodeRecordKey(DefaultPrefix, name)
		if err != nil {
			if !errors.Is(err, idempotency.ErrCorruptRecord) {
				t.Fatalf("decodeRecordKey(%q): %v, want ErrCorruptRecord", name, err)
			}
			return
		}
		if back := recordKey(DefaultPrefix, k); back != name {
			t.Fatalf("%q decodes to %v, whose name is %q", name, k, back)
		}
	})
}

func TestGlobEscape(t *testing.T) {
	for in, want := range map[string]string{
		"dws_notify:":  "dws_notify:",
		`a*b?c[d]e\f:`: `a\*b\?c\[d\]e\\f:`,
	} {
		if got := globEscape(in); got != want {
			t.Errorf("globEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCeilDiv(t *testing.T) {
	for _, c := range []struct {
		d, unit time.Duration
		want    string
	}{
		{time.Nanosecond, time.Microsecond, "1"},
		{time.Microsecond, time.Microsecond, "1"},
		{1001 * time.Nanosecond, time.Microsecond, "2"},
		{600 * time.Millisecond, time.Microsecond, "600000"},
		{1500 * time.Microsecond, time.Millisecond, "2"},
		{168 * time.Hour, time.Millisecond, "604800000"},
		{maxDuration, time.Microsecond, "3153600000000000"},
	} {
		if got := ceilDiv(c.d, c.unit); got != c.want {
			t.Errorf("ceilDiv(%v, %v) = %s, want %s", c.d, c.unit, got, c.want)
		}
	}
}

// validReply is a get-script reply of a done record.
func validReply() []any {
	return []any{"found", "1795300000000000", "604800000",
		"1", "2", strings.Repeat("f", 32), "00000000000000ff", "1795299999000000", "1795300059000000",
		"1795300000000000", "accepted", "200", "SUCCESS", "0123456789abcdef"}
}

func TestDecodeRecordValid(t *testing.T) {
	k := idempotency.Key{ClientID: "c", API: "a", RequestID: "r"}
	rec, err := decodeRecord(k, validReply())
	if err != nil {
		t.Fatal(err)
	}
	want := idempotency.Record{
		Key: k, State: idempotency.StateDone, Token: 255,
		Answer:      idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200},
		ClaimedAt:   time.UnixMicro(1795299999000000),
		LeaseExpiry: time.UnixMicro(1795300059000000),
		CompletedAt: time.UnixMicro(1795300000000000),
		ExpiresAt:   time.UnixMicro(1795300000000000).Add(604800 * time.Second),
	}
	copy(want.Fingerprint[:], strings.Repeat("f", 32))
	if rec != want {
		t.Errorf("decoded %+v, want %+v", rec, want)
	}
	// An in-flight record has no completion fields: nulls, or booleans
	// false should a server send Lua false as RESP3 false.
	for _, missing := range []any{nil, false} {
		a := validReply()
		a[4] = "1"
		for i := 9; i < len(a); i++ {
			a[i] = missing
		}
		rec, err := decodeRecord(k, a)
		if err != nil || rec.State != idempotency.StateInFlight || !rec.CompletedAt.IsZero() || rec.Answer != (idempotency.Answer{}) {
			t.Errorf("in-flight reply with %v for absent fields: %+v, %v", missing, rec, err)
		}
	}
}

// TestDecodeRecordDefensive replaces each element of a valid reply with
// values of the wrong type or shape: decoding must fail with an error (a
// corrupt record or an unexpected reply), never panic, never succeed.
func TestDecodeRecordDefensive(t *testing.T) {
	k := idempotency.Key{ClientID: "c", API: "a", RequestID: "r"}
	bads := map[int][]any{
		1:  {nil, int64(5), "", "0", "-5", "1e15", "abc", "12345678901234567"},
		2:  {nil, int64(5), "", "x", "1.5"},
		3:  {nil, false, "2", "", int64(1)},
		4:  {nil, false, "0", "3", "", int64(2)},
		5:  {nil, false, "", strings.Repeat("f", 31), strings.Repeat("f", 33), int64(1)},
		6:  {nil, false, "", "0000000000000000", "00000000000000FF", "ff", "00000000000000fg", int64(255)},
		7:  {nil, false, "", "0", "-1", "x", " 1795299999000000"},
		8:  {nil, false, "", "0", "1.5e15"},
		9:  {nil, false, "", "0", "abc"},
		10: {nil, false, "", int64(1)},
		11: {nil, false, "", "1000", "-1", "+200", "2O0", int64(200)},
		12: {nil, false, "", strings.Repeat("S", idempotency.MaxResultCodeLen+1), int64(1)},
		13: {nil, false, "", "0123456789ABCDEF", "123", int64(1)},
	}
	for i, vals := range bads {
		for _, v := range vals {
			a := validReply()
			a[i] = v
			rec, err := decodeRecord(k, a)
			if err == nil {
				t.Errorf("element %d = %#v: decoded %+v, want an error", i, v, rec)
				continue
			}
			if !errors.Is(err, idempotency.ErrCorruptRecord) && !errors.Is(err, errUnexpectedReply) {
				t.Errorf("element %d = %#v: error %v is neither corrupt nor unexpected", i, v, err)
			}
		}
	}
	// In-flight records must not carry completion fields.
	a := validReply()
	a[4] = "1"
	if _, err := decodeRecord(k, a); !errors.Is(err, idempotency.ErrCorruptRecord) {
		t.Errorf("in-flight record with completion fields: %v, want ErrCorruptRecord", err)
	}
	// Wrong shapes.
	for _, v := range []any{nil, "found", int64(1), []any{}, []any{int64(1)}, validReply()[:5], append(validReply(), "x")} {
		if _, _, err := replyStatus(v); err == nil {
			if _, err := decodeRecord(k, v.([]any)); err == nil {
				t.Errorf("reply %#v decoded", v)
			}
		}
	}
}

// TestScriptsRecogniseTheirOwnRetry runs the claim and complete scripts
// twice with the same arguments, as go-redis does when a connection breaks
// after the server ran a script but before its reply arrived: the second run
// must report the first one's effect as its own success.
func TestScriptsRecogniseTheirOwnRetry(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	s, err := Open(t.Context(), Options{URL: srv.URL(0), Prefix: "retry:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	k := idempotency.Key{ClientID: "c", API: "a", RequestID: "retried"}
	keys := []string{recordKey(s.prefix, k)}
	fp := strings.Repeat("\x07", 32)
	token := formatHex16(0x1234)

	var claims [2]idempotency.Record
	for i := range claims {
		v, err := claimScript.Run(ctx, s.client, keys, fp, token, "60000000", "3600000").Result()
		if err != nil {
			t.Fatal(err)
		}
		st, a, err := replyStatus(v)
		if err != nil || st != stClaimed {
			t.Fatalf("claim attempt %d: %q, %v; want claimed", i+1, st, err)
		}
		if claims[i], err = decodeRecord(k, a); err != nil {
			t.Fatal(err)
		}
	}
	if claims[0].ClaimedAt != claims[1].ClaimedAt || claims[0].Token != 0x1234 {
		t.Errorf("the repeated claim rewrote the record: %+v then %+v", claims[0], claims[1])
	}
	// Another claimer, another token: in flight.
	v, err := claimScript.Run(ctx, s.client, keys, fp, formatHex16(0x9999), "60000000", "3600000").Result()
	if st, _, _ := replyStatus(v); err != nil || st != stInFlight {
		t.Fatalf("competing claim: %q, %v; want in_flight", st, err)
	}

	nonce := formatHex16(0xabcd)
	args := []any{token, nonce, "SUCCESS", "accepted", "200", "3600000"}
	for i := range 2 {
		v, err := completeScript.Run(ctx, s.client, keys, args...).Result()
		if st, _, _ := replyStatus(v); err != nil || st != stOK {
			t.Fatalf("complete attempt %d: %q, %v; want ok", i+1, st, err)
		}
	}
	// Another Complete under the same token (not a retry: another nonce)
	// finds the record done: lease lost, as the Store contract says.
	v, err = completeScript.Run(ctx, s.client, keys, token, formatHex16(0xef01), "SUCCESS", "accepted", "200", "3600000").Result()
	if st, _, _ := replyStatus(v); err != nil || st != stLost {
		t.Fatalf("second, different Complete: %q, %v; want lost", st, err)
	}
	if err := s.Complete(ctx, k, 0x1234, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, time.Hour); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("Store.Complete of a done record: %v, want ErrLeaseLost", err)
	}
	rec, ok, err := s.Get(ctx, k)
	if err != nil || !ok || rec.State != idempotency.StateDone || rec.Token != 0x1234 || rec.Answer.BackendStatus != 200 {
		t.Errorf("record after the retried completion: %+v %v %v", rec, ok, err)
	}
}

// TestRedeliverRecognisesItsOwnRetry runs the redeliver script twice with
// the same arguments (the same nonce), as go-redis does after a reply was
// lost: the second run is ok, not not_dead; another call (another nonce)
// finds the item pending, no dead letter. (A black-box stall cannot aim at
// the script: Redeliver reads first, and the stall would catch the read.)
func TestRedeliverRecognisesItsOwnRetry(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	s, err := Open(t.Context(), Options{URL: srv.URL(0), Prefix: "redeliver-retry:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	k := idempotency.Key{ClientID: "c", API: "a", RequestID: "dead"}
	cl, err := s.Claim(ctx, k, idempotency.Fingerprint{1}, time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, k, cl.Token, idempotency.NewItem{OrderKey: "o", Payload: []byte("p")}, idempotency.EnqueueOptions{Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	items, err := s.Lease(ctx, 1, time.Minute)
	if err != nil || len(items) != 1 {
		t.Fatalf("Lease = %v, %v", items, err)
	}
	if err := s.DeadLetter(ctx, items[0].Ref(), 503, "backend", time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	base, m := s.shardBase(shardOf("o")), member(k)
	keys := []string{base + "i:" + m, base + "b:" + m, base + "a", base + "d"}
	run := func(nonce uint64) string {
		v, err := redeliverScript.Run(ctx, s.client, keys, base, m, formatHex16(nonce)).Result()
		if err != nil {
			t.Fatal(err)
		}
		st, _, err := replyStatus(v)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := run(0x51); st != stOK {
		t.Fatalf("redelivery: %q, want ok", st)
	}
	if st := run(0x51); st != stOK {
		t.Fatalf("the same redelivery run again: %q, want ok", st)
	}
	if st := run(0x52); st != "not_dead" {
		t.Fatalf("another redelivery of the pending item: %q, want not_dead", st)
	}
}

// TestCompleteWaitAOFPipeline exercises Complete's WaitAOF path on any
// server: WAITAOF (Redis 7.2+) is replaced by a script that answers in the
// same shape, [local fsyncs, replicas], so the pipeline that carries the
// completion and the wait on one connection, its NOSCRIPT fallback, and the
// handling of an unconfirmed fsync are tested even where WAITAOF does not
// exist (TestWaitAOF covers the real command on a 7.2+ server).
func TestCompleteWaitAOFPipeline(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{AppendOnly: true})
	s, err := Open(t.Context(), Options{URL: srv.URL(0), Prefix: "waitaof-pipeline:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	confirmed := "return {1, 0}"
	var waits atomic.Int64
	orig := waitAOFCmd
	defer func() { waitAOFCmd = orig }()
	waitAOFCmd = func(ctx context.Context, replicas int, timeout time.Duration) *redis.IntSliceCmd {
		waits.Add(1)
		if replicas != 0 {
			t.Errorf("WAITAOF for %d replicas, want 0", replicas)
		}
		if timeout != 400*time.Millisecond {
			t.Errorf("wait timeout %v, want 400ms", timeout)
		}
		return redis.NewIntSliceCmd(ctx, "eval", confirmed, 0)
	}
	s.enableWait(s.client.(*redis.Client), true, 0, 400*time.Millisecond)
	ans := idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}
	claim := func(id string) (idempotency.Key, uint64) {
		t.Helper()
		k := idempotency.Key{ClientID: "c", API: "a", RequestID: id}
		c, err := s.Claim(ctx, k, idempotency.Fingerprint{1}, time.Minute, time.Hour)
		if err != nil || c.Status != idempotency.Claimed {
			t.Fatalf("Claim(%s) = %v, %v", id, c.Status, err)
		}
		return k, c.Token
	}
	done := func(k idempotency.Key) bool {
		rec, ok, err := s.Get(ctx, k)
		return err == nil && ok && rec.State == idempotency.StateDone
	}

	k, tok := claim("confirmed")
	if err := s.Complete(ctx, k, tok, ans, time.Hour); err != nil || !done(k) || waits.Load() != 1 {
		t.Fatalf("Complete with a confirmed fsync = %v (done %v, %d waits)", err, done(k), waits.Load())
	}

	// The server forgot the script (restart without persistence of its
	// cache, SCRIPT FLUSH): EVALSHA fails in the pipeline, EVAL follows.
	if err := s.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	k, tok = claim("noscript")
	if err := s.Complete(ctx, k, tok, ans, time.Hour); err != nil || !done(k) {
		t.Fatalf("Complete after SCRIPT FLUSH = %v (done %v)", err, done(k))
	}

	// A lost lease needs no fsync: ErrLeaseLost, whatever the wait says.
	if err := s.Complete(ctx, k, tok+1, ans, time.Hour); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Errorf("Complete under another token = %v, want ErrLeaseLost", err)
	}

	// The fsync is not confirmed in time: Complete fails (the gateway
	// answers U) although the completion was applied, so the provider's
	// retry replays it.
	confirmed = "return {0, 0}"
	k, tok = claim("unconfirmed")
	err = s.Complete(ctx, k, tok, ans, time.Hour)
	if !errors.Is(err, ErrUnconfirmed) || !strings.Contains(err.Error(), "did not confirm") {
		t.Errorf("Complete with an unconfirmed fsync = %v, want an error", err)
	}
	if !done(k) {
		t.Errorf("the unconfirmed completion was not applied")
	}
}

// TestClockMap drives the offset estimate with made-up observations: the
// first puts the server's reading mid-window, later ones that agree leave
// it alone, and one that does not (drift, a step of either clock) moves it
// just onto the edge of its window.
func TestClockMap(t *testing.T) {
	local := time.Unix(1_800_000_000, 0)
	server := local.Add(-20 * time.Second) // Redis's clock 20 s behind ours
	c := newClockMap(nil)
	ms := time.Millisecond
	if off := c.observe(local, local.Add(2*ms), server.Add(ms)); off != 20*time.Second {
		t.Fatalf("first observation: offset %v, want 20s (the reading mid-window)", off)
	}
	// Inside the window: unchanged.
	if off := c.observe(local.Add(time.Second), local.Add(time.Second+5*ms), server.Add(time.Second+3*ms)); off != 20*time.Second {
		t.Errorf("agreeing observation moved the offset to %v", off)
	}
	// The server's reading comes after our window would allow: the server
	// clock runs fast (or ours was stepped back): moved onto the window's
	// late edge.
	off := c.observe(local.Add(2*time.Second), local.Add(2*time.Second+ms), server.Add(2*time.Second+4*ms))
	if want := 20*time.Second - 3*ms; off != want {
		t.Errorf("late reading: offset %v, want %v", off, want)
	}
	// A step of a minute: one observation brings the estimate inside its
	// window.
	sent := local.Add(3 * time.Second)
	reading := server.Add(3*time.Second + time.Minute)
	off = c.observe(sent, sent.Add(ms), reading)
	if got := reading.Add(off); got.Before(sent) || got.After(sent.Add(ms)) {
		t.Errorf("after a step: the reading translates to %v, outside its window [%v, %v]", got, sent, sent.Add(ms))
	}
}

// TestRecordsOnTheLocalClock gives the store a local clock 20 s ahead of
// the server's, then 20 s behind it (same host, so that is exactly the skew
// between the two): every record returned (Claim's, Get's, Scan's) has its
// times on that local clock, so a caller that bounds a wait by
// LeaseExpiry against its own clock waits for the lease, neither 20 s less
// nor 20 s more; the stored fields stay on the server's clock.
func TestRecordsOnTheLocalClock(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	for _, skew := range []time.Duration{20 * time.Second, -20 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			s, err := Open(t.Context(), Options{URL: srv.URL(0), Prefix: "skew" + skew.String() + ":"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.clock = newClockMap(func() time.Time { return time.Now().Add(skew) })
			now := s.clock.now
			ctx := t.Context()
			// The translation is right to within a round trip; allow plenty
			// for a loaded machine.
			const slack = 500 * time.Millisecond
			near := func(what string, got, want time.Time) {
				t.Helper()
				if d := got.Sub(want); d < -slack || d > slack {
					t.Errorf("%s = %v, want %v (off by %v)", what, got, want, d)
				}
			}
			k := idempotency.Key{ClientID: "c", API: "a", RequestID: "skewed"}
			const lease = time.Minute
			start := now()
			c, err := s.Claim(ctx, k, idempotency.Fingerprint{1}, lease, time.Hour)
			if err != nil || c.Status != idempotency.Claimed {
				t.Fatalf("Claim = %v, %v", c.Status, err)
			}
			near("ClaimedAt", c.Record.ClaimedAt, start)
			near("LeaseExpiry", c.Record.LeaseExpiry, start.Add(lease))
			near("ExpiresAt", c.Record.ExpiresAt, start.Add(time.Hour))
			if d := c.Record.LeaseExpiry.Sub(c.Record.ClaimedAt); d != lease {
				t.Errorf("LeaseExpiry-ClaimedAt = %v, want the lease %v exactly", d, lease)
			}

			dup, err := s.Claim(ctx, k, idempotency.Fingerprint{1}, lease, time.Hour)
			if err != nil || dup.Status != idempotency.InFlight {
				t.Fatalf("duplicate Claim = %v, %v", dup.Status, err)
			}
			// What the gateway does with it: wait until the lease ends.
			if wait := dup.Record.LeaseExpiry.Sub(now()); wait < lease-slack || wait > lease {
				t.Errorf("a duplicate would wait %v for the first copy, want about the lease %v", wait, lease)
			}
			near("InFlight LeaseExpiry", dup.Record.LeaseExpiry, c.Record.LeaseExpiry)

			rec, ok, err := s.Get(ctx, k)
			if err != nil || !ok {
				t.Fatalf("Get = %v, %v", ok, err)
			}
			near("Get LeaseExpiry", rec.LeaseExpiry, c.Record.LeaseExpiry)
			var scanned []idempotency.Record
			if err := s.Scan(ctx, func(r idempotency.Record) bool { scanned = append(scanned, r); return true }); err != nil || len(scanned) != 1 {
				t.Fatalf("Scan = %d records, %v", len(scanned), err)
			}
			near("Scan LeaseExpiry", scanned[0].LeaseExpiry, c.Record.LeaseExpiry)

			// The stored fields are the server's.
			l, err := s.client.HGet(ctx, recordKey(s.prefix, k), "l").Result()
			if err != nil {
				t.Fatal(err)
			}
			stored, err := parseMicros(l)
			if err != nil {
				t.Fatal(err)
			}
			near("stored lease expiry + skew", stored.Add(skew), c.Record.LeaseExpiry)

			before := now()
			if err := s.Complete(ctx, k, c.Token, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, 2*time.Hour); err != nil {
				t.Fatal(err)
			}
			done, err := s.Claim(ctx, k, idempotency.Fingerprint{1}, lease, time.Hour)
			if err != nil || done.Status != idempotency.Done {
				t.Fatalf("Claim after Complete = %v, %v", done.Status, err)
			}
			near("CompletedAt", done.Record.CompletedAt, before)
			near("ExpiresAt after Complete", done.Record.ExpiresAt, before.Add(2*time.Hour))
			near("ClaimedAt after Complete", done.Record.ClaimedAt, c.Record.ClaimedAt)
		})
	}
}

// replyError is a server error reply, as go-redis hands it over.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

// TestRefusedByReplyCode: a server error reply refuses the configuration
// unless its code says "not now"; anything that is not a reply is left
// alone.
func TestRefusedByReplyCode(t *testing.T) {
	for reply, want := range map[string]bool{
		"LOADING Redis is loading the dataset in memory":       false,
		"BUSY Redis is busy running a script":                  false,
		"MASTERDOWN Link with MASTER is down":                  false,
		"TRYAGAIN Multiple keys request during rehashing":      false,
		"CLUSTERDOWN The cluster is down":                      false,
		"READONLY You can't write against a read only replica": false,
		"WRONGPASS invalid username-password pair":             true,
		"NOPERM this user has no permissions":                  true,
		"ERR DB index is out of range":                         true,
		"LOADINGX not a code this store knows":                 true,
		"ERR max number of clients reached":                    false,
	} {
		err := refused(fmt.Errorf("ping: %w", replyError(reply)))
		if got := errors.Is(err, ErrServerRefused); got != want {
			t.Errorf("%q: refused = %v, want %v", reply, got, want)
		}
	}
	if err := refused(context.DeadlineExceeded); errors.Is(err, ErrServerRefused) {
		t.Error("a timeout was taken for a refusal")
	}
}

// TestQueueRerunsWrite: a settlement or redelivery that finds its own
// earlier run (same nonce, its reply lost) must still write, so that the
// WAIT or WAITAOF after it in scriptAndWait's pipeline, which waits for
// the writes of its own connection only (Redis 7.2+, Valkey), covers the
// earlier run's write, made on the connection the client gave up on.
// Redis propagates (to the replicas and the AOF) exactly the commands
// that change its dirty count, INFO's rdb_changes_since_last_save (never
// reset here: no RDB saves). The re-run must also leave the item as it
// was.
func TestQueueRerunsWrite(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	s, err := Open(t.Context(), Options{URL: srv.URL(0), Prefix: "rerun-write:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	dirty := func() int64 {
		t.Helper()
		info, err := s.client.Info(ctx, "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "rdb_changes_since_last_save:"); ok {
				var n int64
				if _, err := fmt.Sscan(v, &n); err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatal("no rdb_changes_since_last_save in INFO persistence")
		return 0
	}
	// twice runs sc with the same arguments twice; both runs must answer
	// ok, and the second must write without changing the item.
	twice := func(what string, sc *redis.Script, keys []string, args ...any) {
		t.Helper()
		for i := range 2 {
			before := dirty()
			item := s.client.HGetAll(ctx, keys[0]).Val()
			ttl := s.client.PTTL(ctx, keys[0]).Val()
			v, err := sc.Run(ctx, s.client, keys, args...).Result()
			if st, _, _ := replyStatus(v); err != nil || st != stOK {
				t.Fatalf("%s, run %d: %q, %v; want ok", what, i+1, st, err)
			}
			if i == 0 {
				continue
			}
			if after := dirty(); after <= before {
				t.Errorf("%s run again wrote nothing (dirty %d, then %d): a WAIT after it does not cover the first run", what, before, after)
			}
			if again := s.client.HGetAll(ctx, keys[0]).Val(); fmt.Sprint(again) != fmt.Sprint(item) {
				t.Errorf("%s run again changed the item: %v, then %v", what, item, again)
			}
			if again := s.client.PTTL(ctx, keys[0]).Val(); (ttl < 0) != (again < 0) || again > ttl {
				t.Errorf("%s run again changed the item's TTL: %v, then %v", what, ttl, again)
			}
		}
	}
	lease := func(id, o string) idempotency.ItemRef {
		t.Helper()
		k := idempotency.Key{ClientID: "c", API: "a", RequestID: id}
		cl, err := s.Claim(ctx, k, idempotency.Fingerprint{1}, time.Minute, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Enqueue(ctx, k, cl.Token, idempotency.NewItem{OrderKey: o, Payload: []byte("p")}, idempotency.EnqueueOptions{Retention: time.Hour}); err != nil {
			t.Fatal(err)
		}
		items, err := s.Lease(ctx, 1, time.Minute)
		if err != nil || len(items) != 1 || items[0].Key != k {
			t.Fatalf("Lease = %v, %v; want %v", items, err, k)
		}
		return items[0].Ref()
	}
	settleKeys := func(ref idempotency.ItemRef) (string, string, string, []string) {
		base, m, o := s.shardBase(shardOf(ref.OrderKey)), member(ref.Key), escapeOrder(ref.OrderKey)
		return base, m, o, []string{base + "i:" + m, base + "b:" + m, base + "l", base + "a", base + "d", base + "o:" + o, base + "f:" + o}
	}
	for _, c := range []struct{ mode, dur, retention string }{
		{"ack", "0", "3600000"}, // the item then expires
		{"retry", "1000", "0"},  // the item is pending again, no TTL
	} {
		ref := lease("settle-"+c.mode, "o-"+c.mode)
		base, m, o, keys := settleKeys(ref)
		twice(c.mode, settleScript, keys, base, m, o, formatHex16(ref.Token), c.mode, "200", "", c.dur, c.retention, escapeOrder(ref.Key.API), formatHex16(0x5e771e))
	}

	ref := lease("redeliver", "o-dead")
	if err := s.DeadLetter(ctx, ref, 503, "backend", time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	base, m, _, keys := settleKeys(ref)
	twice("redeliver", redeliverScript, []string{keys[0], keys[1], base + "a", base + "d"}, base, m, formatHex16(0x4ede11))
}
