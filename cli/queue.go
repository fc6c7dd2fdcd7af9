package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/notification"
)

// adminFlags are the flags that find the running gateway's admin API.
type adminFlags struct {
	address, config, adapter string
}

func (a *adminFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.address, "address", "", "address of the admin API (default "+caddy.DefaultAdminListen+")")
	f.StringVarP(&a.config, "config", "c", "", "config file to read the admin address from (if --address is not used)")
	f.StringVarP(&a.adapter, "adapter", "a", "", "name of the config adapter for --config")
}

// target finds the admin API's address as 'caddy reload' does: --address,
// else the admin option of the --config file, else Caddy's default.
func (a *adminFlags) target() (adminTarget, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(a.address, nil, a.config, a.adapter)
	if err != nil {
		return adminTarget{}, fmt.Errorf("finding the admin API address: %w", err)
	}
	return adminTarget{addr: addr, address: a.address, config: a.config}, nil
}

// queueOptions are the flags of `dws-notify queue`.
type queueOptions struct {
	adminFlags
	dead  bool
	limit int
	json  bool
}

func newQueueCommand() *cobra.Command {
	o := &queueOptions{}
	cmd := &cobra.Command{
		Use:   "queue [--dead [--limit N]] [--address ADMIN | --config FILE [--adapter NAME]] [--json]",
		Short: "Show the inbox's queue (acknowledge on_receipt), or its dead letters",
		Long: `Asks the running gateway's admin API for the inbox of acknowledge
on_receipt: per store, how many notifications are queued and not yet
delivered, when the oldest of them arrived, and every item the store keeps
by state (pending, leased, delivered, business_rejected, dead). With --dead
it lists the dead letters instead (oldest first, at most --limit): the
notifications tried until their max_age, which 'caddy dws-notify
redeliver' puts back.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.OutOrStdout()) },
	}
	o.adminFlags.add(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.dead, "dead", false, "list the dead letters")
	f.IntVar(&o.limit, "limit", adminapi.DefaultDeadLetterLimit, "with --dead: list at most this many")
	f.BoolVar(&o.json, "json", false, "print the admin API's JSON answer as it is")
	return cmd
}

func (o *queueOptions) run(w io.Writer) error {
	if o.limit < 1 || o.limit > adminapi.MaxDeadLetterLimit {
		return fmt.Errorf("--limit %d must be from 1 to %d", o.limit, adminapi.MaxDeadLetterLimit)
	}
	admin, err := o.target()
	if err != nil {
		return err
	}
	addr := admin.addr
	path := adminapi.Base + "queue"
	if o.dead {
		path = adminapi.Base + "dead_letters?limit=" + strconv.Itoa(o.limit)
	}
	body, err := adminGet(admin, path)
	if err != nil {
		return err
	}
	now := time.Now()
	var errs []adminapi.StoreError
	if o.dead {
		var ans adminapi.DeadLettersAnswer
		if done, err := decodeAnswer(w, body, o.json, addr, "a dws_notify dead-letter list", &ans); done {
			return err
		}
		fmt.Fprintf(w, "%d dead letters", ans.Total)
		if ans.Truncated {
			fmt.Fprintf(w, " (the oldest %d shown)", len(ans.Items))
		}
		fmt.Fprintln(w)
		for _, it := range ans.Items {
			printItem(w, it, now)
		}
		errs = ans.Errors
	} else {
		var ans adminapi.QueueAnswer
		if done, err := decodeAnswer(w, body, o.json, addr, "a dws_notify queue", &ans); done {
			return err
		}
		for _, s := range ans.Stores {
			fmt.Fprintf(w, "storage:   %s\nqueued:    %d", s.Storage, s.Queued)
			if !s.Oldest.IsZero() {
				fmt.Fprintf(w, " (oldest arrived %s, %s ago)", formatTime(s.Oldest), roughDuration(now.Sub(s.Oldest)))
			}
			c := s.States
			fmt.Fprintf(w, "\nby state:  pending %d, leased %d, delivered %d, business_rejected %d, dead %d (total %d)\n",
				c.Pending, c.Leased, c.Delivered, c.BusinessRejected, c.Dead, c.Total)
		}
		errs = ans.Errors
	}
	for _, e := range errs {
		fmt.Fprintf(w, "NOT READ: %s (HTTP %d)\n", e.Error, e.Status)
	}
	return nil
}

// printItem writes one queue item on a line.
func printItem(w io.Writer, it adminapi.ItemView, now time.Time) {
	fmt.Fprintf(w, "%s %s client %s: %s after %s, arrived %s (%s ago)", it.API, it.RequestID, it.ClientID, it.State, count(it.Attempts, "try", "tries"),
		formatTime(it.EnqueuedAt), roughDuration(now.Sub(it.EnqueuedAt)))
	if it.LastReason != "" || it.LastStatus != 0 {
		fmt.Fprintf(w, "; last try: %s", it.LastReason)
		if it.LastStatus != 0 {
			fmt.Fprintf(w, " HTTP %d", it.LastStatus)
		}
	}
	if !it.HasPayload {
		fmt.Fprint(w, "; payload expired (cannot be redelivered)")
	}
	fmt.Fprintf(w, " [%s]\n", it.Storage)
}

// redeliverOptions are the flags of `dws-notify redeliver`.
type redeliverOptions struct {
	adminFlags
	dead     bool
	api      string
	clientID string
	force    bool
	json     bool
}

func newRedeliverCommand() *cobra.Command {
	o := &redeliverOptions{}
	cmd := &cobra.Command{
		Use:   "redeliver <requestId> [--api NAME] [--client-id ID] [--force] | --dead  [--address ADMIN | --config FILE [--adapter NAME]] [--json]",
		Short: "Put dead letters of the inbox back in the queue",
		Long: `Asks the running gateway's admin API (POST /dws_notify/redeliver) to put
a dead letter of the inbox (acknowledge on_receipt) back in the queue: in
its original place before the customer's notifications still queued, tried
again for a new max_age. --dead puts back every dead letter whose payload
is still kept.

A dead addPaymentMethod whose customer's later removePaymentMethod
reached the backend (delivered, being delivered, or refused for a
business reason) is refused (exit status 1), and skipped by --dead:
delivered now, it would bind a card the customer removed. So is a dead
removePaymentMethod whose customer's later addPaymentMethod reached the
backend: it could unbind a card the customer bound again. --force
redelivers either anyway. A dead letter whose payload expired cannot be
redelivered at all. --dead exits with status 1 (with --json too) when it
skipped a dead letter that --force would redeliver (it stays dead until
someone decides) or could not read a store.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("redeliver takes one requestId (got %q)", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.OutOrStdout(), args) },
	}
	o.adminFlags.add(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.dead, "dead", false, "redeliver every dead letter")
	f.StringVar(&o.api, "api", "", "only this API: addPaymentMethod or removePaymentMethod")
	f.StringVar(&o.clientID, "client-id", "", "only this Client-Id")
	f.BoolVar(&o.force, "force", false, "redeliver a dead addPaymentMethod (removePaymentMethod) even when a later removePaymentMethod (addPaymentMethod) of the customer reached the backend")
	f.BoolVar(&o.json, "json", false, "print the admin API's JSON answer as it is")
	return cmd
}

func (o *redeliverOptions) run(w io.Writer, args []string) error {
	q := url.Values{}
	switch {
	case o.dead && len(args) > 0:
		return errors.New("give a requestId or --dead, not both")
	case o.dead:
		if o.api != "" || o.clientID != "" || o.force {
			return errors.New("--dead redelivers every dead letter: --api, --client-id and --force go with a requestId")
		}
		q.Set("dead", "all")
	case len(args) == 0 || strings.TrimSpace(args[0]) == "":
		return errors.New("give the requestId of the dead letter to redeliver, or --dead for all of them")
	default:
		q.Set("request_id", args[0])
		if o.api != "" {
			if _, ok := notification.Lookup(o.api); !ok {
				return fmt.Errorf("unknown --api %q: the APIs are %s", o.api, strings.Join(notification.Names(), ", "))
			}
			q.Set("api", o.api)
		}
		if o.clientID != "" {
			q.Set("client_id", o.clientID)
		}
		if o.force {
			q.Set("force", "1")
		}
	}
	admin, err := o.target()
	if err != nil {
		return err
	}
	addr := admin.addr
	body, err := adminCall("POST", admin, adminapi.Base+"redeliver?"+q.Encode())
	if err != nil {
		return forceHint(err)
	}
	// The answer is read in both modes: --json prints it as it came, and
	// the exit status says the same as without --json.
	var ans adminapi.RedeliverAnswer
	if _, err := decodeAnswer(w, body, false, addr, "a dws_notify redelivery", &ans); err != nil {
		return err
	}
	stale := 0
	for _, s := range ans.Skipped {
		if adminapi.Stale(s.Code) {
			stale++
		}
	}
	if o.json {
		if _, err := w.Write(body); err != nil {
			return err
		}
	} else {
		now := time.Now()
		fmt.Fprintf(w, "redelivered %d\n", len(ans.Redelivered))
		for _, it := range ans.Redelivered {
			printItem(w, it, now)
		}
		for _, s := range ans.Skipped {
			fmt.Fprintf(w, "SKIPPED (%s): ", s.Reason)
			printItem(w, s.ItemView, now)
		}
		for _, e := range ans.Errors {
			fmt.Fprintf(w, "NOT READ: %s (HTTP %d)\n", e.Error, e.Status)
		}
	}
	var problems []string
	if stale > 0 {
		// Skipped as stale, a dead letter stays dead and its payload goes
		// with the dead letters' retention: someone must decide.
		problems = append(problems, fmt.Sprintf("%s skipped: a later notification of the same customer reached the backend; settle each by hand, or redeliver it by its requestId with --force", count(stale, "dead letter", "dead letters")))
	}
	if len(ans.Errors) > 0 {
		// The dead letters of a store that could not be read stay dead.
		problems = append(problems, fmt.Sprintf("%s could not be read: their dead letters were not redelivered; run it again once they answer", count(len(ans.Errors), "store", "stores")))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// forceHint rewrites the admin API's offer of force=1 at the end of a
// refused redelivery (adminapi.RedeliverForceHint, there only when force
// would redeliver every dead letter left) as this command's --force.
func forceHint(err error) error {
	var apiErr *adminAnswerError
	if !errors.As(err, &apiErr) || apiErr.status != http.StatusConflict {
		return err
	}
	if msg, ok := strings.CutSuffix(apiErr.msg, adminapi.RedeliverForceHint); ok {
		return &adminAnswerError{status: apiErr.status, code: apiErr.code, msg: msg + "(--force redelivers anyway)"}
	}
	return err
}

// count writes n with the noun in the number it takes: "1 try", "2 tries".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
