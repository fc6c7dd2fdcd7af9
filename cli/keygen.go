package cli

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
	"strings"

	"github.com/spf13/cobra"

	"github.com/dwsnotify/dws_notify/inbox"
	"github.com/dwsnotify/dws_notify/signature"
)

// keySize is the RSA modulus size keygen makes: what DWS uses.
const keySize = 2048

// keygenOptions are the flags of `dws-notify keygen`.
type keygenOptions struct {
	out   string
	name  string
	force bool
	inbox bool
}

func newKeygenCommand() *cobra.Command {
	o := &keygenOptions{}
	cmd := &cobra.Command{
		Use:   "keygen --out DIR [--name NAME] [--force] [--inbox]",
		Short: "Make an RSA-2048 key pair in the forms DWS uses, or an inbox key",
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
half goes into dws_public_key; 'dws-notify send' signs with the private half).

With --inbox it makes an inbox key instead, for acknowledge on_receipt:
[NAME_]inbox.key (mode 0600) holds Base64 of 32 random bytes, the key that
encrypts the queued notifications (AES-256-GCM), and the key's id is
printed. Configure it as key {file.<path>} in acknowledge on_receipt; a
second one, made the same way, serves as an order_secret.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.OutOrStdout()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "directory to write the key files to (created if missing)")
	f.StringVar(&o.name, "name", "", "prefix of the file names, e.g. merchant for merchant_private.pem")
	f.BoolVar(&o.force, "force", false, "overwrite existing key files")
	f.BoolVar(&o.inbox, "inbox", false, "make an inbox key (acknowledge on_receipt) instead of an RSA key pair")
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
	if o.inbox {
		return o.runInbox(w)
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

// runInbox makes an inbox key: [NAME_]inbox.key and its id.
func (o *keygenOptions) runInbox(w io.Writer) error {
	prefix := ""
	if o.name != "" {
		prefix = o.name + "_"
	}
	path := filepath.Join(o.out, prefix+"inbox.key")
	material, id, err := inbox.Keygen()
	if err != nil {
		return err
	}
	// The gateway must take what was written: check with its own parser.
	if k, err := inbox.ParseKey(material, ""); err != nil || k.ID != id {
		return fmt.Errorf("the generated inbox key does not parse: %v", err)
	}
	if err := os.MkdirAll(o.out, 0o700); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := writeKeyFile(path, []byte(material+"\n"), 0o600, o.force); err != nil {
		return err
	}
	fmt.Fprintf(w, "inbox key (Base64 of 32 bytes, keep it secret): %s\n", path)
	fmt.Fprintf(w, "key id: %s\n", id)
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
