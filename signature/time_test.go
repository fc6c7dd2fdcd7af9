package signature

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestParseRequestTime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	tests := []struct {
		in   string
		want time.Time
	}{
		{"1685599933871", time.UnixMilli(1685599933871)},
		{"0000000000001", time.UnixMilli(1)},
		{"1685599933", time.Unix(1685599933, 0)},
		{"1685599933871123", time.UnixMicro(1685599933871123)},
		{"1685599933871123456", time.Unix(0, 1685599933871123456)},
		{"0000000000000000001", time.Unix(0, 1)},
		{"9223372036854775807", time.Unix(0, math.MaxInt64)}, // the last nanosecond an int64 holds
		{"2019-05-28T12:12:12+08:00", utc(2019, 5, 28, 4, 12, 12, 0)},
		{"2025-05-19T01:52:32Z", utc(2025, 5, 19, 1, 52, 32, 0)},
		{"2025-02-20T08:51:49.09Z", utc(2025, 2, 20, 8, 51, 49, 90_000_000)},
		{"2024-05-01T10:00:00+0000", utc(2024, 5, 1, 10, 0, 0, 0)},
		{"2024-05-01T10:00:00+00:00", utc(2024, 5, 1, 10, 0, 0, 0)},
		{"2024-05-01T10:00:00-00:00", utc(2024, 5, 1, 10, 0, 0, 0)},
		{"2024-05-01T10:00:00.1234567Z", utc(2024, 5, 1, 10, 0, 0, 123_456_700)},
		{"2024-05-01T10:00:00.1Z", utc(2024, 5, 1, 10, 0, 0, 100_000_000)},
		{"2024-05-01T10:00:00.123456789Z", utc(2024, 5, 1, 10, 0, 0, 123_456_789)},
		{"2024-05-01T10:00:00.5+0530", utc(2024, 5, 1, 4, 30, 0, 500_000_000)},
		{"2019-04-04T12:08:56+05:30", utc(2019, 4, 4, 6, 38, 56, 0)},
		{"2019-04-04T12:08:56-0700", utc(2019, 4, 4, 19, 8, 56, 0)},
		{"2024-02-29T23:59:59-23:59", utc(2024, 3, 1, 23, 58, 59, 0)},
		{"2024-12-31T23:59:59Z", utc(2024, 12, 31, 23, 59, 59, 0)},
	}
	for _, tt := range tests {
		got, err := ParseRequestTime(tt.in)
		if err != nil {
			t.Errorf("ParseRequestTime(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseRequestTime(%q) = %v, want %v (UTC)", tt.in, got, tt.want)
		}
	}
}

func TestParseRequestTimeRefuses(t *testing.T) {
	for _, in := range []string{
		"",
		" 1685599933871",
		"1685599933871 ",
		"168559993387",         // 12 digits
		"16855999338710",       // 14 digits
		"168559993387100",      // 15 digits
		"16855999338710000",    // 17 digits
		"168559993387100000",   // 18 digits
		"16855999338710000000", // 20 digits
		"9223372036854775808",  // 19 digits, one nanosecond past int64
		"9999999999999999999",  // 19 digits, the largest
		"-1685599933871",       // sign
		"+1685599933871",       // sign
		"1685599933.871",       // fraction
		"2019-05-28T12:12:12",  // no zone
		"2025-01-01 12:00:00",  // space, no zone
		"2025-01-01 12:00:00Z", // space separator
		"2025-05-19t01:52:32Z", // lower-case t
		"2025-05-19T01:52:32z", // lower-case z
		"2025-05-19T01:52:32+08",
		"2025-05-19T01:52:32+8:00",
		"2025-05-19T01:52:32+08:0",
		"2025-05-19T01:52:32+0800Z",
		"2025-05-19T01:52:32+24:00",
		"2025-05-19T01:52:32+08:60",
		"2025-05-19T01:52:32ZZ",
		"2025-05-19T01:52:32.Z",           // empty fraction
		"2025-05-19T01:52:32.1234567890Z", // 10 fraction digits
		"2025-05-19T01:52:32,5Z",          // comma fraction
		"2025-05-19T01:52Z",               // no seconds
		"2025-5-19T01:52:32Z",
		"2025-05-19T1:52:32Z",
		"25-05-19T01:52:32Z",
		"2025-13-01T00:00:00Z",
		"2025-00-01T00:00:00Z",
		"2025-02-29T00:00:00Z", // not a leap year
		"2025-04-31T00:00:00Z",
		"2025-05-00T00:00:00Z",
		"2025-05-19T24:00:00Z",
		"2025-05-19T23:60:00Z",
		"2025-05-19T23:59:60Z", // leap second
		"2025-05-19T01:52:32\nZ",
		"2025-05-19T01:52:32Z\n",
		"Mon, 19 May 2025 01:52:32 GMT",
		"２０２５-05-19T01:52:32Z",
	} {
		got, err := ParseRequestTime(in)
		if !errors.Is(err, ErrBadRequestTime) {
			t.Errorf("ParseRequestTime(%q) = %v, %v; want ErrBadRequestTime", in, got, err)
		}
	}
}

func TestCheckFreshness(t *testing.T) {
	now := time.Date(2025, 5, 19, 12, 0, 0, 0, time.UTC)
	const tol = 48 * time.Hour
	far := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		t         time.Time
		tolerance time.Duration
		stale     bool
	}{
		{now, tol, false},
		{now.Add(-tol), tol, false},
		{now.Add(tol), tol, false},
		{now.Add(-tol - time.Nanosecond), tol, true},
		{now.Add(tol + time.Millisecond), tol, true},
		{far, tol, true},                           // duration saturates
		{time.Unix(math.MaxInt64/2, 0), tol, true}, // far future
		{far, 0, false},                            // off
		{far, -time.Second, false},                 // off
	}
	for _, tt := range tests {
		err := CheckFreshness(tt.t, now, tt.tolerance)
		if tt.stale != errors.Is(err, ErrStale) || (!tt.stale && err != nil) {
			t.Errorf("CheckFreshness(%v, tolerance %v) = %v, stale want %v", tt.t, tt.tolerance, err, tt.stale)
		}
	}
}

func TestFormatResponseTime(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+30*60)
	pdt := time.FixedZone("PDT", -7*3600)
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2025, 5, 19, 1, 52, 32, 0, time.UTC), "2025-05-19T01:52:32+00:00"},
		{time.Date(2025, 5, 19, 1, 52, 32, 999_999_999, time.UTC), "2025-05-19T01:52:32+00:00"},
		{time.Date(2019, 4, 4, 12, 8, 56, 0, ist), "2019-04-04T12:08:56+05:30"},
		{time.Date(2025, 5, 18, 18, 52, 32, 5, pdt), "2025-05-18T18:52:32-07:00"},
	}
	for _, tt := range tests {
		got := FormatResponseTime(tt.t)
		if got != tt.want {
			t.Errorf("FormatResponseTime(%v) = %q, want %q", tt.t, got, tt.want)
		}
		back, err := ParseRequestTime(got)
		if err != nil || !back.Equal(tt.t.Truncate(time.Second)) {
			t.Errorf("ParseRequestTime(%q) = %v, %v", got, back, err)
		}
	}
}
