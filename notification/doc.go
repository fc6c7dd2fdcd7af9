// Package notification knows what a valid notification body is and what
// the gateway answers: the field rules of SPEC §2, the fingerprint of §3 and
// the result envelope of §1.3, for two families of notify APIs: DWS
// (addPaymentMethod, removePaymentMethod) and Antom (notifyPayment and the
// others docs/antom.md lists). It has no dependency outside the standard
// library.
//
// # Validation
//
// Lookup gives the rules of a notify API of any family;
// (*API).Validate checks a body in a single pass over its raw bytes, with
// its own scanner, and returns the idempotency key and the fingerprint. A
// body is valid when
//
//   - it is one JSON object (RFC 8259), with nothing but whitespace after it
//     and no byte order mark before it;
//   - every scalar at every depth, array elements included, is a JSON string;
//     a member whose value is null counts as absent, while null as an array
//     element is rejected like any non-string scalar (it cannot be absent
//     without shifting the elements after it). The exceptions are the few
//     Antom fields the catalog lets be a JSON boolean or number as well
//     (Antom sends them so: dispute's defendable, a settlementQuote's
//     quotePrice and guaranteed, retryInfo.availableRetries, an
//     installment plan's installmentNum and feePercentage, phaseNo,
//     periodRule.periodCount; docs/antom.md), at their own path only, in
//     JSON's own grammar, a number of at most 64 characters;
//   - no object has two members with the same key, compared after decoding,
//     so "a" and "\u0061" are the same key (null members included), nor two
//     that stand for one member the catalog names in that object when
//     letter case is ignored, under Unicode simple case folding
//     ("requestId" and "RequestId"; "k" and the Kelvin sign) or once each
//     character is upper- then lower-cased ("requestıd" with the dotless
//     i), and '_' and '-' too ("request_id" and "REQUEST-ID" beside
//     "requestId", or the two of them without it): encoding/json, Java's
//     equalsIgnoreCase and snake- or kebab-case binders could read another
//     copy than the one checked. Members the catalog does not name in that
//     object are not checked, and their keys may differ only in case,
//     '_' or '-' ("fooBar" beside "foobar" or "foo_bar");
//   - every string and key is valid UTF-8; escapes must be valid JSON
//     escapes, and a surrogate escape must be half of a pair ("\ud800" on its
//     own is rejected, where encoding/json would put U+FFFD in its place);
//   - objects and arrays nest at most MaxDepth (32) levels, the body's object
//     being level 1;
//   - the API's rules hold: required fields present (not null, not ""),
//     string lengths in characters (runes) of the decoded value, enums, one-of
//     groups, and the strict-only requirements and enums when Options.Strict
//     is set. Unknown members are allowed, checked like the rest.
//
// # Idempotency key
//
// Result.Key names one notification: a DWS key is the requestId as it is;
// an Antom key is composed of the fields each API's spec names, for
// notifyPayment paymentId:notifyType:result.resultStatus (key.go gives the
// form, docs/antom.md each choice and its source). Every key fits
// MaxKeyLength bytes and an HTTP header.
//
// Errors are *FieldError values whose message is the field path and the
// rule, "paymentMethodDetail.card.expiryYear must be a JSON string". They
// never quote a value from the body. Errors that make the body unreadable as
// a string-typed JSON object are found during the pass and the first in
// body order is reported (a duplicate key counts at the end of its object,
// where members are compared); the API's rules are checked after the pass,
// in catalog order, and the first broken rule is reported.
//
// # Fingerprint
//
// The fingerprint is the SHA-256 of a canonical form built during the same
// pass: every string decoded and length-prefixed, object members sorted by
// decoded key, array elements in order, members with a null value left out,
// a boolean (where a field allows one) a tag of its own, 't' or 'f', and a
// number (where a field allows one) its value written one way under a tag
// of its own ('n', the significant digits and the exponent, so 4200, 4.2e3
// and 4200.0 are one value; see walk.go). Key order, whitespace, escaping
// ("\u0041" or "A", "\/" or "/") and a number's spelling do not change it;
// a changed value, a renamed key, a reordered array or a changed kind
// (string, object, array, boolean, number: true and "true" differ) does. As null members are left out,
// {"a":null,"b":"x"} has the fingerprint of {"b":"x"}. Fingerprints are
// stored by the idempotency store, so changing the canonical form turns a
// retry that spans the upgrade into REPEAT_REQ_INCONSISTENT; for an API
// whose key ends with a content digest (notifyRegistrationStatus,
// notifySubscription, notifyDispute, notifyPayment's UPDATE_AMOUNT_RESULT,
// a failed notifySubscriptionPayment) it changes the key instead, so such a retry is taken for a new notification and
// forwarded again.
//
// # Envelope
//
// AppendEnvelope writes the answer to DWS for a Code, with the message key
// spelt as the MessageField asks.
package notification
