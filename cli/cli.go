// Package cli is `caddy dws-notify`, the operator's commands for the
// dws_notify gateway: keygen, sign, send (a DWS simulator), inspect and
// backup (clients of the running gateway's admin API, whose answers they
// share with it through package adminapi) and restore. It registers the
// command with Caddy's command line when it is imported (the module's root
// package does). The commands never open a running gateway's store.
package cli

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/dwsnotify/dws_notify/signature"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "dws-notify",
		Usage: "<keygen|sign|send|inspect|backup|restore|queue|redeliver|check> [flags]",
		Short: "Operator tools for dws_notify: key pairs, signing, a DWS simulator, record lookup, store backup",
		Long: `
Operator tools for the dws_notify module (Alipay DWS payment-method
notifications): keygen makes key pairs in the forms DWS uses, sign prints the
headers DWS would send for a body, send simulates DWS against a gateway, and
inspect asks the running gateway what it recorded for a requestId, backup
writes a backup of the running gateway's Badger store to a file,
restore creates a store from one, queue shows the inbox of acknowledge
on_receipt (or its dead letters), redeliver puts dead letters back, and
check checks a config file's route order before it is deployed.

The commands run in their own process and never open the running
gateway's store: inspect and backup ask the running Caddy's admin API
instead; restore works on a store no gateway holds.`,
		CobraFunc: Setup,
	})
}

// Run runs `caddy dws-notify <args>` in-process on the command tree the
// binary registers, printing to out, and returns the command's error (as
// the binary would print it).
func Run(out io.Writer, args ...string) error {
	cmd := &cobra.Command{Use: "dws-notify", SilenceUsage: true, SilenceErrors: true}
	Setup(cmd)
	cmd.SetOut(out)
	cmd.SetErr(out)
	if args == nil {
		args = []string{} // nil would make cobra parse the process's own arguments
	}
	cmd.SetArgs(args)
	return cmd.Execute()
}

// Setup builds the dws-notify command tree under cmd: the function caddycmd
// calls for the registered command.
func Setup(cmd *cobra.Command) {
	cmd.AddCommand(newKeygenCommand(), newSignCommand(), newSendCommand(), newInspectCommand(), newBackupCommand(), newRestoreCommand(),
		newQueueCommand(), newRedeliverCommand(), newCheckCommand())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return fmt.Errorf("unknown command %q: use keygen, sign, send, inspect, backup, restore, queue, redeliver or check", args[0])
	}
}

// required reports a missing required string flag.
func required(name, value string) error {
	if strings.TrimSpace(value) == "" {
		return missingFlag(name, "")
	}
	return nil
}

// firstError returns the first non-nil error of errs.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func missingFlag(name, what string) error {
	if what == "" {
		return fmt.Errorf("missing required flag --%s", name)
	}
	return fmt.Errorf("missing required flag --%s (%s)", name, what)
}

// noArgs refuses positional arguments with a message naming them.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, only flags (got %q)", cmd.Name(), args)
	}
	return nil
}

// checkURI checks a request target to sign.
func checkURI(uri string) error {
	if !strings.HasPrefix(uri, "/") || strings.ContainsAny(uri, " \t\r\n#") {
		return fmt.Errorf("--uri %q must be a request target: a path starting with /, plus ?query if any (e.g. /dws/notify/addPaymentMethod)", uri)
	}
	return nil
}

func checkKeyVersion(v int) error {
	if v < 0 {
		return fmt.Errorf("--key-version %d must not be negative", v)
	}
	return nil
}

// requestTimeOrNow returns t, checked to be a Request-Time the gateway
// accepts, or now in epoch milliseconds when t is empty.
func requestTimeOrNow(t string) (string, error) {
	if t == "" {
		return strconv.FormatInt(time.Now().UnixMilli(), 10), nil
	}
	if _, err := signature.ParseRequestTime(t); err != nil {
		return "", fmt.Errorf("--request-time %q is not a Request-Time DWS sends (epoch milliseconds such as 1795300000000, epoch seconds, microseconds or nanoseconds (10, 16 or 19 digits), or ISO 8601 with a zone such as 2026-05-01T10:00:00+08:00)", t)
	}
	return t, nil
}

// loadPrivateKey reads and parses the RSA private key in the file named by
// flag. Errors say which flag and file, and what was found instead; they
// never contain key material.
func loadPrivateKey(flag, path string) (*rsa.PrivateKey, error) {
	return loadKey(flag, path, "private", signature.ParsePrivateKey)
}

// loadPublicKey reads and parses the RSA public key in the file named by
// flag (PEM, bare Base64 DER or a certificate).
func loadPublicKey(flag, path string) (*rsa.PublicKey, error) {
	return loadKey(flag, path, "public", signature.ParsePublicKey)
}

// loadKey reads the file named by flag and parses it with parse; kind
// ("private" or "public") goes into the error.
func loadKey[K any](flag, path, kind string, parse func(string) (K, error)) (K, error) {
	var zero K
	b, err := os.ReadFile(path)
	if err != nil {
		return zero, fmt.Errorf("--%s: cannot read %s: %w", flag, path, pathReason(err))
	}
	key, err := parse(string(b))
	if err != nil {
		problem := err.Error()
		var ke *signature.KeyError
		if errors.As(err, &ke) {
			problem = ke.Problem
		}
		return zero, fmt.Errorf("--%s %s is not a usable RSA %s key: %s", flag, path, kind, problem)
	}
	return key, nil
}

// pathReason strips the operation and path from a *fs.PathError, which the
// callers' messages already name.
func pathReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
