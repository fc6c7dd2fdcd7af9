package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dwsnotify/dws_notify/signature"
)

// signOptions are the flags of `dws-notify sign`.
type signOptions struct {
	clientID    string
	key         string
	keyVersion  int
	uri         string
	requestTime string
	baseURL     string
}

func newSignCommand() *cobra.Command {
	o := &signOptions{}
	cmd := &cobra.Command{
		Use:   "sign --client-id ID --key FILE [--key-version N] --uri PATH [--request-time T] BODYFILE",
		Short: "Print the DWS headers for a body file, and a ready curl line",
		Long: `Signs BODYFILE, byte for byte, the way DWS signs a notification:
RSA-SHA256 over "POST <uri>\n<Client-Id>.<Request-Time>.<body>" with the
private key in --key (PEM or bare Base64, PKCS#8 or PKCS#1), and prints the
Client-Id, Request-Time and Signature headers, then a curl command that
sends the file with them (to --base-url plus --uri).

--uri is the request target the gateway will see: the path, plus ?query if
any. --request-time defaults to now, in epoch milliseconds; it is used
verbatim, so it must be a form DWS sends (an epoch number of 10, 13, 16 or
19 digits, or ISO 8601 with a zone).`,
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.OutOrStdout(), args) },
	}
	f := cmd.Flags()
	f.StringVar(&o.clientID, "client-id", "", "the Client-Id to sign for (the merchant's id at Alipay)")
	f.StringVar(&o.key, "key", "", "file with the private key to sign with (DWS's, when simulating DWS)")
	f.IntVar(&o.keyVersion, "key-version", 1, "keyVersion to announce in the Signature header")
	f.StringVar(&o.uri, "uri", "", "request target to sign: path plus ?query, e.g. /dws/notify/addPaymentMethod")
	f.StringVar(&o.requestTime, "request-time", "", "Request-Time header value (default: now, epoch milliseconds)")
	f.StringVar(&o.baseURL, "base-url", "http://localhost:8080", "scheme and host the curl line sends to")
	return cmd
}

func (o *signOptions) run(w io.Writer, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("sign takes exactly one argument, the body file to sign (got %d)", len(args))
	}
	if err := firstError(required("client-id", o.clientID), required("key", o.key), required("uri", o.uri)); err != nil {
		return err
	}
	if err := checkURI(o.uri); err != nil {
		return err
	}
	requestTime, err := requestTimeOrNow(o.requestTime)
	if err != nil {
		return err
	}
	if err := checkKeyVersion(o.keyVersion); err != nil {
		return err
	}
	key, err := loadPrivateKey("key", o.key)
	if err != nil {
		return err
	}
	bodyFile := args[0]
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return fmt.Errorf("reading the body file %s: %w", bodyFile, pathReason(err))
	}
	sig, err := signature.SignatureHeader(key, o.keyVersion, o.uri, o.clientID, requestTime, body)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Client-Id: %s\nRequest-Time: %s\nSignature: %s\n\n", o.clientID, requestTime, sig)
	// -g: curl must not read {} or [] in the target as its URL patterns;
	// the target is sent exactly as it was signed.
	fmt.Fprintf(w, "curl -sS -g %s \\\n", shellQuote(strings.TrimRight(o.baseURL, "/")+o.uri))
	for _, h := range []string{
		"Content-Type: application/json; charset=UTF-8",
		"Client-Id: " + o.clientID,
		"Request-Time: " + requestTime,
		"Signature: " + sig,
	} {
		fmt.Fprintf(w, "  -H %s \\\n", shellQuote(h))
	}
	fmt.Fprintf(w, "  --data-binary %s\n", shellQuote("@"+bodyFile))
	return nil
}
