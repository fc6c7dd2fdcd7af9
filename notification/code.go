package notification

// Code is a DWS result code, the resultCode of the envelope (SPEC §1.3).
type Code string

// The result codes the gateway answers with.
const (
	// Success acknowledges the notification (forwarded and accepted, a
	// business refusal to follow up by hand, or a replayed duplicate).
	Success Code = "SUCCESS"
	// UnknownException means the outcome is unknown; DWS retries.
	UnknownException Code = "UNKNOWN_EXCEPTION"
	// ParamIllegal rejects a body that breaks the field rules.
	ParamIllegal Code = "PARAM_ILLEGAL"
	// InvalidSignature rejects a request whose signature or Request-Time
	// does not check out.
	InvalidSignature Code = "INVALID_SIGNATURE"
	// AccessDenied rejects a Client-Id that is not configured.
	AccessDenied Code = "ACCESS_DENIED"
	// RepeatReqInconsistent rejects a requestId seen before with other content.
	RepeatReqInconsistent Code = "REPEAT_REQ_INCONSISTENT"
	// ProcessFail is a general business failure; reserved, not produced by default.
	ProcessFail Code = "PROCESS_FAIL"
)

// Status gives the resultStatus that goes with the code: "S" for Success,
// "U" for UnknownException, "F" for the failures. A value that is not one of
// the constants gets "U", the status on which DWS retries.
func (c Code) Status() string {
	switch c {
	case Success:
		return "S"
	case ParamIllegal, InvalidSignature, AccessDenied, RepeatReqInconsistent, ProcessFail:
		return "F"
	}
	return "U"
}

// DefaultMessage gives the message written when the caller has none: "success"
// for Success, as in the seeds' samples, and the text of the seeds' error-code
// tables for the others. A value that is not one of the constants gets the
// UnknownException text.
func (c Code) DefaultMessage() string {
	switch c {
	case Success:
		return "success"
	case ParamIllegal:
		return "Illegal parameters."
	case InvalidSignature:
		return "Signature is invalid."
	case AccessDenied:
		return "Access denied."
	case RepeatReqInconsistent:
		return "Repeat request inconsistent."
	case ProcessFail:
		return "A general business failure occurred."
	}
	return "API failed due to unknown reasons."
}

// known reports whether c is one of the constants.
func (c Code) known() bool {
	switch c {
	case Success, UnknownException, ParamIllegal, InvalidSignature, AccessDenied, RepeatReqInconsistent, ProcessFail:
		return true
	}
	return false
}
