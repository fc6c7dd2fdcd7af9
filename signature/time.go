package signature

import (
	"math"
	"time"
)

// ParseRequestTime parses a Request-Time header value, for the freshness
// check only (the signed content uses the header verbatim). Accepted:
//
//   - an epoch number of exactly 13 digits, milliseconds ("1685599933871"):
//     what DWS and Alipay's current SDKs send;
//   - 10 digits, seconds ("1685599933"); 16 digits, microseconds
//     ("1685599933871123"); 19 digits, nanoseconds
//     ("1685599933871123456", what Alipay's Go SDK sent up to v1.2.18). The
//     digit count makes each unambiguous: every form spans 2001..2286
//     (nanoseconds end at 2262, where an int64 count of them does);
//   - ISO 8601 / RFC 3339 "YYYY-MM-DDTHH:MM:SS", an optional fraction of 1
//     to 9 digits after ".", and a zone that is "Z", "±HH:MM" or "±HHMM"
//     ("2019-05-28T12:12:12+08:00", "2025-02-20T08:51:49.09Z",
//     "2024-05-01T10:00:00+0000", or .NET's seven fraction digits
//     "2024-05-01T10:00:00.1234567Z").
//
// Everything else (other digit counts, signs, a missing zone, a space or a
// lower-case "t"/"z", out-of-range fields such as February 30 or 24:00,
// leap seconds) is refused with an error wrapping ErrBadRequestTime. The
// result is in UTC.
func ParseRequestTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, newError(ErrBadRequestTime, "empty Request-Time")
	}
	if n, ok := digits(s); ok {
		switch len(s) {
		case 13:
			return time.UnixMilli(int64(n)).UTC(), nil
		case 10:
			return time.Unix(int64(n), 0).UTC(), nil
		case 16:
			return time.UnixMicro(int64(n)).UTC(), nil
		case 19:
			if n > math.MaxInt64 {
				return time.Time{}, newError(ErrBadRequestTime, "epoch nanoseconds Request-Time is past the year 2262")
			}
			return time.Unix(0, int64(n)).UTC(), nil
		}
		return time.Time{}, newError(ErrBadRequestTime, "epoch Request-Time has %d digits; want 10 (seconds), 13 (milliseconds), 16 (microseconds) or 19 (nanoseconds)", len(s))
	}
	t, ok := parseISO(s)
	if !ok {
		return time.Time{}, newError(ErrBadRequestTime, "Request-Time %q is neither an epoch number nor ISO 8601 with a zone", quoteShort(s))
	}
	return t, nil
}

// digits parses s as an unsigned decimal of at most 19 digits (which
// always fits in a uint64).
func digits(s string) (uint64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + uint64(s[i]-'0')
	}
	return n, true
}

// parseISO parses YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|±HH:MM|±HHMM).
func parseISO(s string) (time.Time, bool) {
	const base = len("2006-01-02T15:04:05")
	if len(s) < base+1 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := s[base:]
	nsec := 0
	if rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		frac := rest[1:i]
		if len(frac) < 1 || len(frac) > 9 {
			return time.Time{}, false
		}
		f, _ := digits(frac)
		for range 9 - len(frac) {
			f *= 10
		}
		nsec, rest = int(f), rest[i:]
	}
	var offset int // seconds east of UTC
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':',
		len(rest) == 5 && (rest[0] == '+' || rest[0] == '-'):
		hh, okh := digits(rest[1:3])
		mm, okm := digits(rest[len(rest)-2:])
		if !okh || !okm || hh > 23 || mm > 59 {
			return time.Time{}, false
		}
		offset = int(hh)*3600 + int(mm)*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(int(year), time.Month(month), int(day), int(hour), int(minute), int(sec), nsec, time.UTC)
	if t.Day() != int(day) { // e.g. February 30 normalised to March
		return time.Time{}, false
	}
	return t.Add(-time.Duration(offset) * time.Second), true
}

// quoteShort bounds an attacker-supplied value quoted in an error message.
func quoteShort(s string) string {
	const limit = 64
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}

// CheckFreshness reports, wrapping ErrStale, a request time t further than
// tolerance from now in either direction. A tolerance of zero or less turns
// the check off.
func CheckFreshness(t, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		return nil
	}
	d := now.Sub(t) // saturates instead of overflowing
	switch {
	case d > tolerance:
		return newError(ErrStale, "Request-Time is %s in the past; tolerance is %s", d, tolerance)
	case d < -tolerance:
		return newError(ErrStale, "Request-Time is %s in the future; tolerance is %s", d.Abs(), tolerance)
	}
	return nil
}

// ResponseTimeLayout is the time.Format layout of Response-Time: ISO 8601,
// whole seconds, numeric offset (never "Z").
const ResponseTimeLayout = "2006-01-02T15:04:05-07:00"

// FormatResponseTime formats t for the Response-Time header in t's own
// location, e.g. "2019-04-04T12:08:56+05:30" or "2025-05-19T01:52:32+00:00";
// fractions of a second are dropped.
func FormatResponseTime(t time.Time) string {
	return t.Format(ResponseTimeLayout)
}
