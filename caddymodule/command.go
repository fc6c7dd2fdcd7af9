package caddymodule

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
		Usage: "<keygen|sign|send|inspect|backup|restore> [flags]",
		Short: "Operator tools for dws_notify: key pairs, signing, a DWS simulator, record lookup, store backup",
		Long: `
Operator tools for the dws_notify module (Alipay DWS payment-method
notifications): keygen makes key pairs in the forms DWS uses, sign prints the
headers DWS would send for a body, send simulates DWS against a gateway, and
inspect asks the running gateway what it recorded for a requestId, backup
writes a backup of the running gateway's Badger store to a file, and
restore creates a store from one.

The commands run in their own process and never open the running
gateway's store: inspect and backup ask the running Caddy's admin API
instead; restore works on a store no gateway holds.`,
		CobraFunc: setupCommand,
	})
}

// setupCommand builds the dws-notify command tree under cmd: the function
// caddycmd calls for the registered command, and what the tests execute.
func setupCommand(cmd *cobra.Command) {
	cmd.AddCommand(newKeygenCommand(), newSignCommand(), newSendCommand(), newInspectCommand(), newBackupCommand(), newRestoreCommand())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return fmt.Errorf("unknown command %q: use keygen, sign, send, inspect, backup or restore", args[0])
	}
}

// keySize is the RSA modulus size keygen makes: what DWS uses.
const keySize = 2048

// keygenOptions are the flags of `dws-notify keygen`.
type keygenOptions struct {
	out   string
	name  string
	force bool
}

func newKeygenCommand() *cobra.Command {
	o := &keygenOptions{}
	cmd := &cobra.Command{
		Use:   "keygen --out DIR [--name NAME] [--force]",
		Short: "Make an RSA-2048 key pair in the forms DWS uses",
		Long: `Makes an RSA-2048 key pair and writes it in the forms DWS and Alipay's
SDKs use:

  [NAME_]private.pem  the private key, PKCS#8 PEM (mode 0600; keep it secret)
  [NAME_]private.b64  the same private key as bare Base64 of the PKCS#8 DER
                      (mode 0600), the only form Alipay's SDKs take
  [NAME_]public.pem   the public key, PEM (SubjectPublicKeyInfo)
  [NAME_]public.b64   the public key as bare Base64 of the DER
                      SubjectPublicKeyInfo, the form DWS hands its keys out
                      in, takes the merchant's in, and the SDKs take

and prints the public Base64 line. The .b64 files hold the Base64 text
alone, without a line break, ready to paste into an SDK's configuration.
Existing files are never overwritten unless --force is given.

Use it for the merchant's key pair (the private half signs the gateway's
answers with merchant_private_key; the Base64 public half is what you
register with DWS), or, for tests, for a stand-in DWS key pair (the public
half goes into dws_public_key; 'dws-notify send' signs with the private half).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.OutOrStdout()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "directory to write the key files to (created if missing)")
	f.StringVar(&o.name, "name", "", "prefix of the file names, e.g. merchant for merchant_private.pem")
	f.BoolVar(&o.force, "force", false, "overwrite existing key files")
	return cmd
}

// keyFiles are the paths keygen writes.
type keyFiles struct{ private, privateB64, publicPEM, publicB64 string }

// all returns every path keygen writes.
func (f keyFiles) all() []string {
	return []string{f.private, f.privateB64, f.publicPEM, f.publicB64}
}

func (o *keygenOptions) files() keyFiles {
	prefix := ""
	if o.name != "" {
		prefix = o.name + "_"
	}
	return keyFiles{
		private:    filepath.Join(o.out, prefix+"private.pem"),
		privateB64: filepath.Join(o.out, prefix+"private.b64"),
		publicPEM:  filepath.Join(o.out, prefix+"public.pem"),
		publicB64:  filepath.Join(o.out, prefix+"public.b64"),
	}
}

func (o *keygenOptions) run(w io.Writer) error {
	if o.out == "" {
		return missingFlag("out", "the directory to write the key pair to")
	}
	if o.name != "" && (strings.ContainsAny(o.name, `/\`) || o.name == "." || o.name == "..") {
		return fmt.Errorf("--name %q must be a plain file name prefix, without path separators", o.name)
	}
	files := o.files()
	if !o.force {
		for _, p := range files.all() {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s already exists; not overwriting it (use --force to replace the key pair, or another --out or --name)", p)
			}
		}
	}

	key, err := rsa.GenerateKey(rand.Reader, keySize)
	if err != nil {
		return fmt.Errorf("generating the key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding the private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("encoding the public key: %w", err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	b64 := base64.StdEncoding.EncodeToString(pubDER)
	privB64 := base64.StdEncoding.EncodeToString(privDER)

	// The gateway must take what was written: check with its own parsers.
	for _, material := range []string{string(privPEM), privB64} {
		if _, err := signature.ParsePrivateKey(material); err != nil {
			return fmt.Errorf("the generated private key does not parse: %w", err)
		}
	}
	if _, err := signature.ParsePublicKey(b64); err != nil {
		return fmt.Errorf("the generated public key does not parse: %w", err)
	}

	if err := os.MkdirAll(o.out, 0o700); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	for _, f := range []struct {
		path string
		data []byte
		mode fs.FileMode
	}{
		{files.private, privPEM, 0o600},
		{files.privateB64, []byte(privB64), 0o600},
		{files.publicPEM, pubPEM, 0o644},
		{files.publicB64, []byte(b64), 0o644},
	} {
		if err := writeKeyFile(f.path, f.data, f.mode, o.force); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "private key (PKCS#8 PEM, keep it secret): %s\n", files.private)
	fmt.Fprintf(w, "private key (bare Base64 PKCS#8, secret): %s\n", files.privateB64)
	fmt.Fprintf(w, "public key (PEM):                         %s\n", files.publicPEM)
	fmt.Fprintf(w, "public key (bare Base64 DER):             %s\n", files.publicB64)
	fmt.Fprintf(w, "%s\n", b64)
	return nil
}

// writeKeyFile writes data to path with mode. Without force it fails if the
// file exists (O_EXCL, so a file created meanwhile is not overwritten
// either). With force it writes a new file next to path and renames it over
// path: a symlink at path is replaced, not followed, and a failure leaves
// the old file whole.
func writeKeyFile(path string, data []byte, mode fs.FileMode, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; not overwriting it (use --force to replace the key pair)", path)
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, pathReason(err))
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, pathReason(err))
	}
	tmp := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

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
		return zero, fmt.Errorf("--%s %s is not a usable RSA %s key: %s", flag, path, kind, strings.TrimPrefix(err.Error(), "signature: "))
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
