package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/notification"
)

// inspectOptions are the flags of `dws-notify inspect`.
type inspectOptions struct {
	adminFlags
	requestID string
	api       string
	clientID  string
	json      bool
}

// adminTimeout bounds one admin API request of inspect.
const adminTimeout = 30 * time.Second

func newInspectCommand() *cobra.Command {
	o := &inspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect --request-id ID [--api NAME] [--client-id ID] [--address ADMIN | --config FILE [--adapter NAME]] [--json]",
		Short: "Ask the running gateway for the record of a requestId (or an Antom notification key)",
		Long: `Asks the running gateway's admin API (GET /dws_notify/record) what its
store knows about a requestId, and prints the record: its state, how the
backend took the notification, what DWS was answered, and the times. It
never opens the store itself: the gateway holds it.

With acknowledge on_receipt the record says DWS was answered at receipt;
whether and when the backend got the notification is its inbox item's,
printed below it: queued, leased (being delivered), delivered (the
backend's status and when), business_rejected, or dead (and why), with
its attempts and the last try's result and time.

For an Antom notification, --request-id takes its idempotency key as the
gateway composed it (the X-Dws-Idempotency-Key header the backend got,
or the key field of its log line): the key fields' values joined by ":",
e.g. 2020010123456789XXXX:PAYMENT_RESULT:S for notifyPayment
(paymentId:notifyType:result.resultStatus). docs/antom.md lists each
API's key; when nothing is found under an id alone on a config serving
Antom APIs, the error says so.

Without --api and --client-id every record of the requestId is shown, in
every store the running config uses (Badger directory or Redis), for
every Client-Id and API the config serves (records of a Client-Id no
longer configured are found with --client-id).

When a store cannot be read (its Redis is down, say), the records of the
other stores are printed, then a NOT READ line per such store, and the
exit status is 0. The exit status is 1 when nothing could be shown: no
record (and every store was read), no store could be read, or no record
in the stores read while another could not be.

The admin API is at ` + caddy.DefaultAdminListen + ` unless --address says otherwise, or
--config names the config file to read the admin address from (as 'caddy
reload' does).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.OutOrStdout()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.requestID, "request-id", "", "the requestId to look up, or an Antom notification's key (e.g. 2020010123456789XXXX:PAYMENT_RESULT:S)")
	f.StringVar(&o.api, "api", "", "only this API (addPaymentMethod, notifyPayment, ...)")
	f.StringVar(&o.clientID, "client-id", "", "only this Client-Id")
	o.adminFlags.add(cmd)
	f.BoolVar(&o.json, "json", false, "print the admin API's JSON answer as it is")
	return cmd
}

func (o *inspectOptions) run(w io.Writer) error {
	if err := required("request-id", o.requestID); err != nil {
		return err
	}
	if o.api != "" {
		if _, ok := notification.Lookup(o.api); !ok {
			return fmt.Errorf("unknown --api %q: the APIs are %s", o.api, strings.Join(notification.Names(), ", "))
		}
	}
	admin, err := o.target()
	if err != nil {
		return err
	}
	addr := admin.addr
	q := url.Values{"request_id": {o.requestID}}
	if o.api != "" {
		q.Set("api", o.api)
	}
	if o.clientID != "" {
		q.Set("client_id", o.clientID)
	}
	body, err := adminGet(admin, adminapi.Base+"record?"+q.Encode())
	// A 404 (adminapi.CodeNoRecord) says why there is no record itself.
	if err != nil {
		return err
	}
	var ans adminapi.RecordsAnswer
	if done, err := decodeAnswer(w, body, o.json, addr, "a dws_notify record list", &ans); done {
		return err
	}
	for i, rec := range ans.Records {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printRecord(w, rec, time.Now())
	}
	// The records shown are all the readable stores hold; the stores that
	// could not be read may hold more.
	if len(ans.Errors) > 0 {
		fmt.Fprintln(w)
	}
	for _, e := range ans.Errors {
		fmt.Fprintf(w, "NOT READ: %s (HTTP %d); records of requestId %s in storage %s, if any, are not shown\n", e.Error, e.Status, o.requestID, e.Storage)
	}
	return nil
}

// printRecord writes one record for a person to read.
func printRecord(w io.Writer, rec adminapi.RecordView, now time.Time) {
	label := "requestId"
	if api, ok := notification.Lookup(rec.API); ok && api.Family() == notification.Antom {
		label = "key"
	}
	fmt.Fprintf(w, "%s %s\n", label, rec.RequestID)
	line := func(label, value string) { fmt.Fprintf(w, "  %-12s %s\n", label, value) }
	line("api", rec.API)
	line("Client-Id", rec.ClientID)
	switch rec.State {
	case "done":
		line("state", "done")
		switch rec.Outcome {
		case "accepted":
			line("outcome", fmt.Sprintf("accepted: the backend took it (HTTP %d)", rec.BackendStatus))
		case "business_rejected":
			line("outcome", fmt.Sprintf("business_rejected: the backend refused it for a business reason (HTTP %d); DWS was acknowledged, so it needs human follow-up", rec.BackendStatus))
		case "queued":
			line("outcome", "queued in the inbox at receipt (acknowledge on_receipt): how the backend took it is the inbox item's")
		default:
			line("outcome", fmt.Sprintf("%s (backend HTTP %d)", rec.Outcome, rec.BackendStatus))
		}
		line("answered", rec.ResultCode+" (what DWS gets for every resend)")
	case "in_flight":
		if rec.LeaseExpired {
			line("state", "in flight, lease expired at "+formatTime(rec.LeaseExpiry)+": abandoned mid-forward; DWS's next resend will be forwarded")
		} else {
			line("state", "in flight: being forwarded to the backend now (lease until "+formatTime(rec.LeaseExpiry)+")")
		}
	default:
		line("state", rec.State)
	}
	if !rec.ClaimedAt.IsZero() {
		line("claimed", formatTime(rec.ClaimedAt))
	}
	if !rec.CompletedAt.IsZero() {
		line("completed", formatTime(rec.CompletedAt))
	}
	if !rec.ExpiresAt.IsZero() {
		line("kept until", formatTime(rec.ExpiresAt)+" (end of retention, in "+roughDuration(rec.ExpiresAt.Sub(now))+")")
	}
	line("storage", rec.Storage)
	switch {
	case rec.Outcome == "queued" && rec.InboxError != "":
		line("inbox", "could not be read: "+rec.InboxError)
	case rec.Outcome == "queued":
		printInboxItem(line, rec.Inbox, now)
	}
}

// printInboxItem writes the inbox item of a record queued at receipt: its
// state, tries and times, through line.
func printInboxItem(line func(label, value string), it *adminapi.ItemView, now time.Time) {
	if it == nil {
		line("inbox", "no item any more (its retention ended)")
		return
	}
	switch it.State {
	case "pending":
		if it.Attempts == 0 {
			line("inbox", "queued: waiting for its first try, due "+formatTime(it.DueAt))
		} else {
			line("inbox", "queued: waiting for its next try, due "+formatTime(it.DueAt))
		}
	case "leased":
		line("inbox", "leased: being delivered now (lease until "+formatTime(it.LeaseExpiry)+")")
	case "delivered":
		line("inbox", fmt.Sprintf("delivered: the backend took it (HTTP %d) at %s", it.LastStatus, formatTime(it.FinishedAt)))
	case "business_rejected":
		line("inbox", fmt.Sprintf("business_rejected: the backend refused it for a business reason (HTTP %d) at %s; it needs human follow-up", it.LastStatus, formatTime(it.FinishedAt)))
	case "dead":
		redeliver := "redeliverable (caddy dws-notify redeliver)"
		if !it.HasPayload {
			redeliver = "its payload expired, it cannot be redelivered"
		}
		line("inbox", fmt.Sprintf("dead: no try succeeded within max_age; dead-lettered at %s (%s)", formatTime(it.FinishedAt), redeliver))
	default:
		line("inbox", it.State)
	}
	attempts := fmt.Sprintf("%d", it.Attempts)
	if !it.RedeliveredAt.IsZero() {
		attempts += " (since its redelivery at " + formatTime(it.RedeliveredAt) + ")"
	}
	line("attempts", attempts)
	if it.Attempts > 0 && (it.LastStatus != 0 || it.LastReason != "") {
		line("last try", lastTry(it))
	}
	line("queued at", formatTime(it.EnqueuedAt)+" ("+roughDuration(now.Sub(it.EnqueuedAt))+" ago)")
}

// lastTry renders how the last try of it ended: the backend's status, or
// the class of the error when there was none.
func lastTry(it *adminapi.ItemView) string {
	var s string
	switch it.LastReason {
	case "", "status":
		s = fmt.Sprintf("HTTP %d", it.LastStatus)
	case "timeout":
		s = "no answer within forward_timeout (timeout)"
	case "error":
		s = "no answer: the backend could not be reached or no handler answered (error)"
	case "decrypt":
		s = "the payload did not open with any configured inbox key (decrypt)"
	case "stopped":
		s = "cut short by a stop; given back (stopped)"
	default:
		s = it.LastReason
	}
	if it.LastReason != "" && it.LastReason != "status" && it.LastStatus != 0 {
		s += fmt.Sprintf(", HTTP %d", it.LastStatus)
	}
	if !it.FinishedAt.IsZero() {
		s += " at " + formatTime(it.FinishedAt)
	}
	return s
}

// roughDuration renders d for a person: days and hours, hours and
// minutes, or seconds.
func roughDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d >= 24*time.Hour:
		d = d.Round(time.Hour)
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return d.Round(time.Second).String()
}

// formatTime renders t in the local zone with milliseconds.
func formatTime(t time.Time) string {
	return t.Local().Format("2006-01-02T15:04:05.000Z07:00")
}

// decodeAnswer writes body as it is to w when raw is set (--json) and
// reports done; otherwise it decodes it into v, an answer of the kind
// what names (for the error).
func decodeAnswer(w io.Writer, body []byte, raw bool, addr, what string, v any) (done bool, err error) {
	if raw {
		_, err := w.Write(body)
		return true, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return true, fmt.Errorf("the admin API at %s answered something that is not %s: %w", addr, what, err)
	}
	return false, nil
}

// adminTarget is the admin API a command asks: its address, and the
// --address and --config the operator gave ("" when not), which say where
// the address came from when nothing answers there.
type adminTarget struct {
	addr, address, config string
}

// adminGet sends GET path to the Caddy admin API of admin and returns the
// body of a 200 answer. Failures are messages an operator can act on: no
// admin API (the gateway is not running), a Caddy without this module, or
// the error the endpoint answered.
func adminGet(admin adminTarget, path string) ([]byte, error) {
	return adminCall(http.MethodGet, admin, path)
}

// adminCall is adminGet with another method (POST for the endpoints that
// change something).
func adminCall(method string, admin adminTarget, path string) ([]byte, error) {
	res, err := adminDo(method, admin, path, adminTimeout)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of the Caddy admin API at %s: %w", admin.addr, err)
	}
	return body, nil
}

// adminOpen sends GET path to the Caddy admin API of admin and returns a
// 200 answer, whose body the caller reads and closes; any other answer is
// turned into an error as adminGet describes. timeout bounds the whole
// exchange; 0 bounds only the connection and the wait for the answer's
// header (for answers streamed as they are made).
func adminOpen(admin adminTarget, path string, timeout time.Duration) (*http.Response, error) {
	return adminDo(http.MethodGet, admin, path, timeout)
}

// adminDo is adminOpen with the request's method.
func adminDo(method string, admin adminTarget, path string, timeout time.Duration) (*http.Response, error) {
	addr := admin.addr
	parsed, err := caddy.ParseNetworkAddress(addr)
	if err != nil || parsed.PortRangeSize() > 1 {
		return nil, fmt.Errorf("invalid admin API address %q (want host:port, or unix//path)", addr)
	}
	origin := "http://" + parsed.JoinHostPort(0)
	network, dialAddr := parsed.Network, parsed.JoinHostPort(0)
	switch {
	case parsed.IsUnixNetwork():
		origin = "http://127.0.0.1"
		if i := strings.LastIndexByte(dialAddr, '|'); i >= 0 { // socket permission bits
			dialAddr = dialAddr[:i]
		}
	case parsed.IsFdNetwork():
		return nil, fmt.Errorf("the admin API address %q is a file descriptor; give --address with the address it listens on", addr)
	}
	req, err := http.NewRequest(method, origin+path, nil)
	if err != nil {
		return nil, fmt.Errorf("admin API address %q: %w", addr, err)
	}
	if !parsed.IsUnixNetwork() {
		req.Header.Set("Origin", origin)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, dialAddr)
			},
			ResponseHeaderTimeout: adminTimeout,
		},
	}
	res, err := client.Do(req)
	if err != nil {
		var errno syscall.Errno
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			errors.As(err, &errno)
			return nil, admin.unreachable(errno)
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("asking the Caddy admin API at %s: %w", addr, err)
	}
	if res.StatusCode == http.StatusOK {
		return res, nil
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of the Caddy admin API at %s: %w", addr, err)
	}
	var apiErr struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &apiErr) == nil && apiErr.Error != "" {
		return nil, &adminAnswerError{status: res.StatusCode, code: res.Header.Get(adminapi.ErrorCodeHeader), msg: apiErr.Error}
	}
	if res.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("the Caddy at %s has no dws_notify admin API: is it a build without the dws_notify module?", addr)
	}
	return nil, fmt.Errorf("the Caddy admin API at %s answered HTTP %d: %s", addr, res.StatusCode, strings.TrimSpace(printable(body)))
}

// unreachable is the error of a command that found no admin API at
// admin's address (errno says how the connection failed). Its advice
// follows from where the address came from: an --address is simply not
// answered; the address read from --config is the file's gateway not
// running (or not with that file); Caddy's default may be the wrong
// place, since a gateway can run its admin API on a Unix socket or
// another port (operations.md recommends the socket).
func (admin adminTarget) unreachable(errno syscall.Errno) error {
	switch {
	case admin.address != "": // --address wins over --config
		return fmt.Errorf("no Caddy admin API answers at --address %s (%s): is the gateway running, with its admin API there?", admin.addr, errno.Error())
	case admin.config != "":
		return fmt.Errorf("no Caddy admin API answers at %s, the admin address read from --config %s (%s): is the gateway running with that config?", admin.addr, admin.config, errno.Error())
	}
	return fmt.Errorf("no Caddy admin API at %s: is the gateway running? (%s) If it is, its admin API is elsewhere: pass --config FILE (the Caddyfile whose admin option names it) or --address ADMIN", admin.addr, errno.Error())
}

// adminAnswerError is an error answer of the admin API: its status, its
// code (adminapi.ErrorCodeHeader, "" for most) and message.
type adminAnswerError struct {
	status int
	code   string
	msg    string
}

func (e *adminAnswerError) Error() string { return e.msg }
