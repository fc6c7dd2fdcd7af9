package dwshttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/dwsnotify/dws_notify/notification"
)

// RefusedRequestID reads the idempotency key (the requestId for DWS) out
// of a body whose signature verified but that broke the field rules, so
// that its log line names the notification to chase with Alipay. A key
// field's value is the JSON string's decoded text (or a JSON number's
// digits, when the rule broken is that it must be a string). A composed
// key (Antom) is the values read joined as the key joins them
// (notification.JoinKeyParts), a field that cannot be read giving an
// empty part; a content digest part is left out, since a body the rules
// refused has no fingerprint. The result is cut to MaxSenderText bytes (a
// valid requestId has at most 64), "…" marking a cut. why says which
// required key field could not be read, and which optional one is there
// but unusable, for the log line; an absent or null optional key field
// (a failed vaulting's vaultingStatus) is an empty part, as Validate
// builds the key, and not reported. With nothing read id is "". The body
// is only read.
func RefusedRequestID(api *notification.API, body []byte) (id, why string) {
	var parts, missing []string
	read := false
	for _, f := range api.KeyParts() {
		if f.Digest {
			continue
		}
		v, w, absent := refusedField(body, f.Path)
		switch {
		case w == "":
			read = true
		case absent && !f.Required:
			// An optional key field absent (or null) is an empty part,
			// as Validate builds the key: nothing is missing.
		case !slices.Contains(missing, w):
			missing = append(missing, w)
		}
		parts = append(parts, v)
	}
	why = strings.Join(missing, "; ")
	switch {
	case !read:
		return "", why
	case len(parts) == 1:
		return SenderText(parts[0]), why
	}
	return SenderText(notification.JoinKeyParts(parts...)), why
}

// refusedField reads the key field at path (dot-separated) out of body:
// its value, or why there is none and whether that is because it (or an
// object above it) is absent or null, as Validate sees an absent field.
func refusedField(body []byte, path string) (v, why string, absent bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := lookupValue(dec, strings.Split(path, "."), "", "the body")
	if err != nil {
		var e *missingKey
		if errors.As(err, &e) {
			return "", e.why, e.absent
		}
		return "", "the body is not valid JSON up to " + path, false
	}
	return v, "", false
}

// missingKey says why the key field has no usable value; absent when it,
// or an object above it, is absent or null.
type missingKey struct {
	why    string
	absent bool
}

func (e *missingKey) Error() string { return e.why }

// lookupValue reads the JSON object at dec's position (what names it in
// messages) and returns the string or number at path inside it, taking the
// first occurrence of each member. prefix is the dotted path of that object
// from the body ("" for the body itself), so that a message names a nested
// member by its whole path (result.resultStatus), as a field rule does.
func lookupValue(dec *json.Decoder, path []string, prefix, what string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if tok == nil {
			return "", &missingKey{what + " is null", true}
		}
		return "", &missingKey{what + " is not a JSON object", false}
	}
	name := prefix + path[0]
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		if member, _ := tok.(string); member != path[0] {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", err
			}
			continue
		}
		if len(path) > 1 {
			return lookupValue(dec, path[1:], name+".", name)
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
			return "", &missingKey{name + " is null", true}
		}
		return "", &missingKey{name + " is neither a JSON string nor a number", false}
	}
	return "", &missingKey{name + " is absent", true}
}
