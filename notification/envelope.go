package notification

import "unicode/utf8"

// MessageField is the spelling of the envelope's message key.
type MessageField string

// The spellings of the message key.
const (
	// ResultMsg is the seeds' spelling and the default.
	ResultMsg MessageField = "resultMsg"
	// ResultMessage is the spelling of Alipay's other APIs and SDKs.
	ResultMessage MessageField = "resultMessage"
	// BothMessageFields writes the message twice, as resultMsg and then as
	// resultMessage, for a receiver that reads either.
	BothMessageFields MessageField = "both"
)

// MaxMessageLength is the most characters (runes) of a message the envelope
// carries; the DWS result table declares resultMessage as String(256).
const MaxMessageLength = 256

// AppendEnvelope appends the result envelope for code to dst and returns the
// extended slice, for example
//
//	{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}
//
// The keys come in that order. An empty message is replaced by
// code.DefaultMessage(). The message is written as a JSON string: quotes,
// backslashes and control characters are escaped (and U+2028, U+2029), each
// invalid UTF-8 byte becomes U+FFFD, and only its first MaxMessageLength runes
// are kept; '<', '>' and '&' are written as they are. field selects the
// message key: ResultMessage, or BothMessageFields for the same message
// under both keys,
//
//	{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success","resultMessage":"success"}}
//
// and any other value, the zero value included, means ResultMsg. A code that
// is not one of the constants is written as UnknownException, so DWS
// retries rather than meet a code it does not know. It does not allocate
// when dst has room for the result.
func AppendEnvelope(dst []byte, code Code, message string, field MessageField) []byte {
	if !code.known() {
		code = UnknownException
	}
	if message == "" {
		message = code.DefaultMessage()
	}
	first := field
	if field != ResultMessage {
		first = ResultMsg
	}
	dst = append(dst, `{"result":{"resultStatus":"`...)
	dst = append(dst, code.Status()...)
	dst = append(dst, `","resultCode":"`...)
	dst = append(dst, code...)
	dst = append(dst, `","`...)
	dst = append(dst, first...)
	dst = append(dst, `":"`...)
	start := len(dst)
	dst = appendMessage(dst, message)
	if field == BothMessageFields {
		end := len(dst)
		dst = append(dst, `","`+ResultMessage+`":"`...)
		dst = append(dst, dst[start:end]...) // the escaped message once more
	}
	return append(dst, `"}}`...)
}

// Envelope returns the result envelope for code in a new slice; see AppendEnvelope.
func Envelope(code Code, message string, field MessageField) []byte {
	return AppendEnvelope(make([]byte, 0, 96+len(message)), code, message, field)
}

const hexDigits = "0123456789abcdef"

// appendMessage appends the JSON string contents (without quotes) of the
// first MaxMessageLength runes of s.
func appendMessage(dst []byte, s string) []byte {
	runes := 0
	for i := 0; i < len(s) && runes < MaxMessageLength; runes++ {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			default:
				dst = append(dst, c)
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, "\uFFFD"...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}
