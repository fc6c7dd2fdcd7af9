package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// Files of the server's TLS material in its directory.
const (
	certFile       = "server.crt"
	keyFile        = "server.key"
	caFile         = "ca.crt"
	clientCertFile = "client.crt"
	clientKeyFile  = "client.key"
)

// CA is a private certificate authority made for one test: nothing outside
// the test trusts it (it is in no system pool), which is what the TLS tests
// need to show that only the configuration that names it trusts it.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	serial  atomic.Int64
}

// NewCA makes a CA valid for a day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	ca, err := newCA()
	if err != nil {
		t.Fatalf("redistest: making a CA: %v", err)
	}
	return ca
}

func newCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest private CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.serial.Store(1)
	return ca, nil
}

// CertPEM is the CA's certificate, PEM-encoded.
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// Pool is a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issue makes a key pair signed by the CA, PEM-encoded: a server
// certificate for hosts (IP addresses or DNS names), or with server false
// a client certificate named by hosts[0].
func (ca *CA) Issue(server bool, hosts ...string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, fmt.Errorf("redistest: a certificate needs a name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// ServerTLS is a server configuration with a certificate for hosts, for
// test servers other than Redis (an HTTPS backend signed by the same CA).
func (ca *CA) ServerTLS(t testing.TB, hosts ...string) *tls.Config {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(true, hosts...)
	if err != nil {
		t.Fatalf("redistest: issuing a server certificate: %v", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

// TLSFiles are the PEM files a client of a TLS server needs: the CA's
// certificate and, for a server that requires client certificates, a
// client certificate and its key (empty otherwise).
type TLSFiles struct {
	CA, Cert, Key string
}

// writeTLS writes the server's certificate and key (for serverName, or
// 127.0.0.1 when empty), the CA's certificate and a client key pair into
// dir, and returns a client configuration that trusts the CA and presents
// the client certificate.
func writeTLS(ca *CA, dir, serverName string) (*tls.Config, TLSFiles, error) {
	host := serverName
	if host == "" {
		host = "127.0.0.1"
	}
	certPEM, keyPEM, err := ca.Issue(true, host)
	if err != nil {
		return nil, TLSFiles{}, err
	}
	clientPEM, clientKeyPEM, err := ca.Issue(false, "dws_notify test client")
	if err != nil {
		return nil, TLSFiles{}, err
	}
	files := TLSFiles{CA: filepath.Join(dir, caFile), Cert: filepath.Join(dir, clientCertFile), Key: filepath.Join(dir, clientKeyFile)}
	for name, data := range map[string][]byte{
		certFile: certPEM, keyFile: keyPEM, caFile: ca.CertPEM(), clientCertFile: clientPEM, clientKeyFile: clientKeyPEM,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, TLSFiles{}, err
		}
	}
	pair, err := tls.X509KeyPair(clientPEM, clientKeyPEM)
	if err != nil {
		return nil, TLSFiles{}, err
	}
	return &tls.Config{
		RootCAs:      ca.Pool(),
		ServerName:   host,
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
	}, files, nil
}
