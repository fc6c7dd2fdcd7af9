package dwshttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/dwsnotify/dws_notify/notification"
)

// RefusedRequestID reads the requestId (the field the API's idempotency key
// is) out of a body whose signature verified but that broke the field
// rules, so that its log line names the notification to chase with Alipay.
// The value is the JSON string's decoded text (or a JSON number's digits,
// when the rule broken is that it must be a string), cut to MaxSenderText
// bytes (a valid requestId has at most 64), "…" marking a cut. When there
// is no such value it returns "" and why, for the log line. The body is
// only read.
func RefusedRequestID(api *notification.API, body []byte) (id, why string) {
	fields := api.KeyFields()
	if len(fields) != 1 || fields[0] == notification.ContentDigest {
		return "", "the idempotency key is made of several fields"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := lookupValue(dec, strings.Split(fields[0], "."), "the body")
	if err != nil {
		var e *missingKey
		if errors.As(err, &e) {
			return "", e.why
		}
		return "", "the body is not valid JSON up to " + fields[0]
	}
	return SenderText(v), ""
}

// missingKey says why the key field has no usable value.
type missingKey struct{ why string }

func (e *missingKey) Error() string { return e.why }

// lookupValue reads the JSON object at dec's position (what names it in
// messages) and returns the string or number at path inside it, taking the
// first occurrence of each member.
func lookupValue(dec *json.Decoder, path []string, what string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return "", &missingKey{what + " is not a JSON object"}
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		if name, _ := tok.(string); name != path[0] {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", err
			}
			continue
		}
		if len(path) > 1 {
			return lookupValue(dec, path[1:], path[0])
		}
		tok, err = dec.Token()
		if err != nil {
			return "", err
		}
		switch v := tok.(type) {
		case string:
			return v, nil
		case json.Number:
			return string(v), nil
		case nil:
			return "", &missingKey{path[0] + " is null"}
		}
		return "", &missingKey{path[0] + " is neither a JSON string nor a number"}
	}
	return "", &missingKey{path[0] + " is absent"}
}
