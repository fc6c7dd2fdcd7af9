package config

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
)

// Duration is a duration in the JSON config: a string such as "10s",
// "1.5h" or "7d" (ParseDuration), or an integer of nanoseconds. It decodes
// as Caddy's caddy.Duration does, and encodes, as that does, as an integer
// of nanoseconds.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler. A quoted value is read by
// ParseDuration (without JSON unescaping, as Caddy reads it); anything
// else as an integer of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) == 0 {
		return io.EOF
	}
	var dur time.Duration
	var err error
	if b[0] == '"' && b[len(b)-1] == '"' {
		dur, err = ParseDuration(strings.Trim(string(b), `"`))
	} else {
		err = json.Unmarshal(b, &dur)
	}
	*d = Duration(dur)
	return err
}

// maxDurationText bounds the text ParseDuration reads.
const maxDurationText = 1024

// ParseDuration reads a duration as time.ParseDuration does, with one more
// unit, d: a day of 24 hours. The number before each d is the run of
// digits, dots and signs that ends there, read as a float and written
// back in hours ("1.5d" is "36h", "1d12h" is "24h12h"); what results goes
// to time.ParseDuration. Text longer than 1024 bytes is refused. Caddy's
// caddy.ParseDuration, which the Caddyfile uses, reads durations the
// same way (caddymodule's tests compare the two).
func ParseDuration(s string) (time.Duration, error) {
	if len(s) > maxDurationText {
		return 0, errDurationTooLong
	}
	if !strings.Contains(s, "d") {
		return time.ParseDuration(s)
	}
	var b strings.Builder
	copied, run := 0, 0 // s[:copied] is in b; the current run of number bytes starts at run
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != 'd' {
			if !isNumberByte(c) {
				run = i + 1
			}
			continue
		}
		days, err := strconv.ParseFloat(s[run:i], 64)
		if err != nil {
			return 0, err
		}
		b.WriteString(s[copied:run])
		b.WriteString(strconv.FormatFloat(days*24, 'f', -1, 64))
		b.WriteByte('h')
		copied, run = i+1, i+1
	}
	b.WriteString(s[copied:])
	return time.ParseDuration(b.String())
}

type durationError string

func (e durationError) Error() string { return string(e) }

const errDurationTooLong = durationError("parsing duration: input string too long")

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+'
}
