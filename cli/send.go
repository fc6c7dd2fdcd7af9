package cli

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/signature"
)

// sendOptions are the flags of `dws-notify send`.
type sendOptions struct {
	url         string
	clientID    string
	key         string
	keyVersion  int
	sample      string
	body        string
	requestID   string
	verifyKey   string
	requestTime string
	timeout     time.Duration

	requestIDGiven bool // --request-id was on the command line, maybe empty
}

// maxAnswerSize bounds how much of the gateway's answer send reads.
const maxAnswerSize = 1 << 20

func newSendCommand() *cobra.Command {
	o := &sendOptions{}
	cmd := &cobra.Command{
		Use:   "send --url URL --client-id ID --key FILE [--key-version N] (--sample API | --body FILE) [--request-id ID] [--verify-key FILE]",
		Short: "Simulate DWS: sign a notification exactly as DWS does, send it, check the answer",
		Long: `Sends one notification to the gateway the way DWS does: a POST of the
body's exact bytes with the Client-Id, Request-Time (now, epoch milliseconds)
and Signature headers, signed with the private key in --key over
"POST <uri>\n<Client-Id>.<Request-Time>.<body>", where <uri> is the path and
query of --url. It prints the HTTP status and the answer envelope.

The body is one of the samples built into this binary (--sample
addPaymentMethod or removePaymentMethod, the examples of the DWS API
documents; notifyPayment, notifyCapture, notifyRefund, notifyDispute or
notifyRegistrationStatus, the examples of the Antom reference;
notifyVaulting, notifySubscription or notifySubscriptionPayment, assembled
from the Antom reference's parameter tables) or a file (--body).
--request-id replaces the value of the body's top-level requestId (for an
Antom --sample, of the first field of its idempotency key: paymentId,
captureId, refundId, disputeId, registrationRequestId, vaultingRequestId or
subscriptionRequestId) and
leaves every other byte as it was, so one sample can be sent as many
distinct notifications.

With --verify-key (the merchant's public key) it checks the answer's
Signature over "POST <uri>\n<Client-Id>.<Response-Time>.<answer body>" and
says "verified", "not signed", or "DOES NOT VERIFY" (then it exits non-zero).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.requestIDGiven = cmd.Flags().Changed("request-id")
			return o.run(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "the gateway's notify URL, e.g. http://localhost:8080/dws/notify/addPaymentMethod")
	f.StringVar(&o.clientID, "client-id", "", "the Client-Id to send (the merchant's id at Alipay)")
	f.StringVar(&o.key, "key", "", "file with the private key to sign with (DWS's, or a stand-in's)")
	f.IntVar(&o.keyVersion, "key-version", 1, "keyVersion to announce in the Signature header")
	f.StringVar(&o.sample, "sample", "", "send a built-in sample: "+strings.Join(notification.Names(), ", "))
	f.StringVar(&o.body, "body", "", "send the contents of this file as the body")
	f.StringVar(&o.requestID, "request-id", "", "replace the body's top-level requestId (an Antom sample's first key field, e.g. paymentId) with this value")
	f.StringVar(&o.verifyKey, "verify-key", "", "file with the merchant's public key: verify the answer's signature")
	f.StringVar(&o.requestTime, "request-time", "", "Request-Time header value (default: now, epoch milliseconds)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the answer")
	return cmd
}

func (o *sendOptions) run(w io.Writer) error {
	if err := firstError(required("url", o.url), required("client-id", o.clientID), required("key", o.key)); err != nil {
		return err
	}
	target, err := url.Parse(o.url)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return fmt.Errorf("--url %q must be an http:// or https:// URL with a host, e.g. http://localhost:8080/dws/notify/addPaymentMethod", o.url)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout %s must be positive", o.timeout)
	}
	if err := checkKeyVersion(o.keyVersion); err != nil {
		return err
	}
	body, err := o.loadBody()
	if err != nil {
		return err
	}
	requestTime, err := requestTimeOrNow(o.requestTime)
	if err != nil {
		return err
	}
	key, err := loadPrivateKey("key", o.key)
	if err != nil {
		return err
	}
	var verifyKey *rsa.PublicKey
	if o.verifyKey != "" {
		if verifyKey, err = loadPublicKey("verify-key", o.verifyKey); err != nil {
			return err
		}
	}

	// The URI signed is the request target the client puts on the request
	// line: the same function net/http uses to write it.
	uri := target.RequestURI()
	sig, err := signature.SignatureHeader(key, o.keyVersion, uri, o.clientID, requestTime, body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("--url %q: %w", target.Redacted(), err)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("Client-Id", o.clientID)
	req.Header.Set("Request-Time", requestTime)
	req.Header.Set("Signature", sig)

	note := ""
	if id, ok := topLevelString(body, o.idMember()); ok {
		note = ", " + o.idMember() + " " + id
	}
	fmt.Fprintf(w, "POST %s  (Client-Id %s, Request-Time %s%s)\n", target.Redacted(), o.clientID, requestTime, note)

	client := &http.Client{
		Timeout: o.timeout,
		// DWS does not follow redirects: show the redirect itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := client.Do(req)
	if err != nil {
		return describeSendError(target, err)
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerSize+1))
	if err != nil {
		return fmt.Errorf("reading the answer from %s: %w", target.Host, err)
	}
	truncated := len(answer) > maxAnswerSize
	if truncated {
		answer = answer[:maxAnswerSize]
	}
	fmt.Fprintf(w, "HTTP %d\n", res.StatusCode)
	fmt.Fprintf(w, "%s\n", printable(answer))
	if truncated {
		fmt.Fprintf(w, "(answer cut at %d bytes)\n", maxAnswerSize)
	}
	if !isEnvelope(answer) {
		fmt.Fprintln(w, "(this is not a DWS result envelope: is --url the gateway's notify URL?)")
	}
	if verifyKey == nil {
		return nil
	}
	return o.verifyAnswer(w, verifyKey, uri, res.Header, answer)
}

// verifyAnswer checks the answer's Signature with the --verify-key key and
// prints the verdict; an answer that is not signed, or signed but does not
// verify, is an error (non-zero exit): the caller asked for a signed answer.
func (o *sendOptions) verifyAnswer(w io.Writer, pub *rsa.PublicKey, uri string, h http.Header, answer []byte) error {
	sig := h.Get("Signature")
	if sig == "" {
		fmt.Fprintln(w, "answer signature: NOT SIGNED (no Signature header; is merchant_private_key configured?)")
		return errors.New("--verify-key was given but the answer is not signed")
	}
	fail := func(reason string) error {
		reason = strings.TrimPrefix(reason, "signature: ")
		fmt.Fprintf(w, "answer signature: DOES NOT VERIFY with %s: %s\n", o.verifyKey, reason)
		return errors.New("the answer's signature does not verify")
	}
	clientID := h.Get("Client-Id")
	if clientID == "" {
		clientID = o.clientID
	}
	responseTime := h.Get("Response-Time")
	if responseTime == "" {
		return fail("the answer has no Response-Time header, which the signed content includes")
	}
	parsed, err := signature.ParseHeader(sig)
	if err != nil {
		return fail(err.Error())
	}
	version := 1
	if parsed.HasKeyVersion {
		version = parsed.KeyVersion
	}
	ring := signature.NewKeyRing()
	if err := ring.Add(clientID, version, pub); err != nil {
		return fail(err.Error())
	}
	if _, err := ring.Verify(clientID, uri, responseTime, answer, sig); err != nil {
		return fail(err.Error())
	}
	fmt.Fprintf(w, "answer signature: verified with %s (keyVersion %d)\n", o.verifyKey, version)
	return nil
}

// loadBody returns the body to send: the seed sample or the file, with the
// requestId replaced when --request-id is given.
func (o *sendOptions) loadBody() ([]byte, error) {
	var body []byte
	switch {
	case o.sample != "" && o.body != "":
		return nil, errors.New("give either --sample or --body, not both")
	case o.sample != "":
		b, ok := notification.Sample(o.sample)
		if !ok {
			return nil, fmt.Errorf("unknown --sample %q: the built-in samples are %s", o.sample, strings.Join(notification.Names(), ", "))
		}
		body = b
	case o.body != "":
		b, err := os.ReadFile(o.body)
		if err != nil {
			return nil, fmt.Errorf("--body: cannot read %s: %w", o.body, pathReason(err))
		}
		body = b
	default:
		return nil, fmt.Errorf("missing the notification body: give --sample (%s) or --body FILE", strings.Join(notification.Names(), ", "))
	}
	if o.requestID == "" {
		if o.requestIDGiven {
			return nil, errors.New("--request-id must not be empty")
		}
		return body, nil
	}
	out, err := replaceTopLevelString(body, o.idMember(), o.requestID)
	if err != nil {
		return nil, fmt.Errorf("--request-id: %w", err)
	}
	return out, nil
}

// idMember is the top-level member --request-id replaces: requestId, or
// for an Antom --sample the first field of its idempotency key (a
// top-level member for every Antom API: TestIDMemberOfEverySample), so
// that a new value makes a new notification.
func (o *sendOptions) idMember() string {
	if api, ok := notification.Lookup(o.sample); ok && api.Family() == notification.Antom {
		if f := api.KeyFields()[0]; f != notification.ContentDigest && !strings.Contains(f, ".") {
			return f
		}
	}
	return "requestId"
}

// describeSendError turns a failed POST into a message an operator can act
// on.
func describeSendError(target *url.URL, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("nothing is listening at %s: is the gateway running? (connection refused)", target.Host)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("cannot resolve the host of --url %s: %s", target.Host, dnsErr.Err)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) && uerr.Timeout() {
		return fmt.Errorf("no answer from %s in time (--timeout)", target.Host)
	}
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("sending to %s: %w", target.Host, err)
}

// isEnvelope reports whether b looks like a DWS result envelope.
func isEnvelope(b []byte) bool {
	var env struct {
		Result *struct {
			ResultStatus string `json:"resultStatus"`
			ResultCode   string `json:"resultCode"`
		} `json:"result"`
	}
	return json.Unmarshal(b, &env) == nil && env.Result != nil && env.Result.ResultStatus != "" && env.Result.ResultCode != ""
}

// printable returns b for the terminal: as is when it is UTF-8 text,
// otherwise a note of its size.
func printable(b []byte) string {
	if !utf8.Valid(b) || bytes.ContainsFunc(b, func(r rune) bool { return r < ' ' && r != '\n' && r != '\r' && r != '\t' }) {
		return fmt.Sprintf("(%d bytes of binary data)", len(b))
	}
	return string(b)
}

// findTopLevelMember locates the value of the top-level member name of the
// JSON object in body: body[start:end] are the value's exact bytes. It
// walks the body with the JSON tokenizer, so member names are compared
// decoded ("request\u0049d" is requestId) and nested members of the same
// name are not confused with it. A body that is not one JSON object, or
// that has the member twice, is an error.
func findTopLevelMember(body []byte, name string) (start, end int, found bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return 0, 0, false, fmt.Errorf("the body is not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return 0, 0, false, errors.New("the body is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, false, fmt.Errorf("the body is not valid JSON: %w", err)
		}
		key, _ := tok.(string)
		afterKey := int(dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, 0, false, fmt.Errorf("the body is not valid JSON: %w", err)
		}
		if key != name {
			continue
		}
		if found {
			return 0, 0, false, fmt.Errorf("the body has the top-level member %s twice", name)
		}
		e := int(dec.InputOffset())
		s := valueStart(body, afterKey)
		if s < 0 || s > e || e > len(body) || !bytes.Equal(body[s:e], raw) {
			return 0, 0, false, fmt.Errorf("could not locate the value of %s in the body", name)
		}
		start, end, found = s, e, true
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return 0, 0, false, fmt.Errorf("the body is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, 0, false, errors.New("the body has data after its JSON object")
	}
	return start, end, found, nil
}

// valueStart returns the offset of the value that follows a member name
// ending at off: past whitespace, the colon and whitespace; -1 when the
// bytes are not that.
func valueStart(body []byte, off int) int {
	skip := func(i int) int {
		for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
			i++
		}
		return i
	}
	i := skip(off)
	if i >= len(body) || body[i] != ':' {
		return -1
	}
	return skip(i + 1)
}

// replaceTopLevelString returns a copy of body whose top-level member name
// has the JSON string value instead of its old value. Every other byte is
// kept as it was: the body is spliced, never re-serialised.
func replaceTopLevelString(body []byte, name, value string) ([]byte, error) {
	start, end, found, err := findTopLevelMember(body, name)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("the body has no top-level %s to replace", name)
	}
	var enc bytes.Buffer
	e := json.NewEncoder(&enc)
	e.SetEscapeHTML(false)
	if err := e.Encode(value); err != nil {
		return nil, err
	}
	quoted := bytes.TrimSuffix(enc.Bytes(), []byte("\n"))
	out := make([]byte, 0, len(body)-(end-start)+len(quoted))
	out = append(out, body[:start]...)
	out = append(out, quoted...)
	return append(out, body[end:]...), nil
}

// topLevelString returns the string value of the body's top-level member
// name, if the body is a JSON object that has one.
func topLevelString(body []byte, name string) (string, bool) {
	start, end, found, err := findTopLevelMember(body, name)
	if err != nil || !found {
		return "", false
	}
	var s string
	if json.Unmarshal(body[start:end], &s) != nil {
		return "", false
	}
	return s, true
}
