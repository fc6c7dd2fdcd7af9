package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwsnotify/dws_notify/signature"
)

// Fixed protocol values of the harness's notifications.
const (
	benchClientID = "2188120000000000"
	addAPI        = "addPaymentMethod"
	addURI        = "/dws/notify/addPaymentMethod"
	removeURI     = "/dws/notify/removePaymentMethod"
	sigBytes      = 256 // RSA-2048
	// requestIDLen is the length of the generated requestIds: the 13-digit
	// Request-Time of the pool followed by the 16-digit index. The seed
	// sample's own requestId has 29 characters too, so every body has the
	// same length as the sample.
	requestIDLen = 29
	// maxPoolAge is how old a cached pool may be. The gateway accepts a
	// Request-Time within 48h (request_time_tolerance); past 24h the pool
	// is signed again.
	maxPoolAge = 24 * time.Hour
)

// inputs are the files a pool is derived from.
type inputs struct {
	dwsPrivate       []byte // PEM, signs the notifications
	dwsPublic        []byte // bare Base64 DER, what the gateway is configured with
	merchantPrivate  []byte // PEM, signs the gateway's answers in mode b
	merchantPublic   []byte // PEM, checks one answer of mode b
	template         []byte // the addPaymentMethod sample body
	templatePrefix   []byte // template up to the requestId value
	templateSuffix   []byte // template after the requestId value
	dwsKey           *rsa.PrivateKey
	merchantPubKey   *rsa.PublicKey
	fingerprint      [32]byte // of everything that goes into a signature
	keysDir, bodyPth string
	// customers > 0 spreads the notifications over that many customers:
	// the referenceCustomerId value of the template (in templateSuffix at
	// custAt, custLen bytes) becomes i % customers, zero-padded to its
	// length, so each customer's notifications are an order of their own
	// in the inbox. 0 keeps the template's one customer.
	customers       int
	custAt, custLen int
}

func loadInputs(keysDir, bodyPath string, customers int) (*inputs, error) {
	in := &inputs{keysDir: keysDir, bodyPth: bodyPath, customers: customers}
	for _, f := range []struct {
		dst  *[]byte
		name string
	}{
		{&in.dwsPrivate, "dws_private.pem"},
		{&in.dwsPublic, "dws_public.b64"},
		{&in.merchantPrivate, "merchant_private.pem"},
		{&in.merchantPublic, "merchant_public.pem"},
	} {
		b, err := os.ReadFile(filepath.Join(keysDir, f.name))
		if err != nil {
			return nil, err
		}
		*f.dst = b
	}
	body, err := os.ReadFile(bodyPath)
	if err != nil {
		return nil, err
	}
	in.template = body
	// Split the template around the value of its requestId member.
	const member = `"requestId": "`
	i := bytes.Index(body, []byte(member))
	if i < 0 {
		return nil, fmt.Errorf("%s has no %s member", bodyPath, member)
	}
	start := i + len(member)
	end := bytes.IndexByte(body[start:], '"')
	if end < 0 {
		return nil, fmt.Errorf("%s: unterminated requestId", bodyPath)
	}
	in.templatePrefix = body[:start]
	in.templateSuffix = body[start+end:]
	if customers > 0 {
		const cust = `"referenceCustomerId": "`
		i := bytes.Index(in.templateSuffix, []byte(cust))
		if i < 0 {
			return nil, fmt.Errorf("-customers needs a referenceCustomerId member after the requestId in %s", bodyPath)
		}
		in.custAt = i + len(cust)
		in.custLen = bytes.IndexByte(in.templateSuffix[in.custAt:], '"')
		if in.custLen < len(strconv.Itoa(customers-1)) {
			return nil, fmt.Errorf("-customers %d: the template's referenceCustomerId is too short for %d digits", customers, len(strconv.Itoa(customers-1)))
		}
	}

	if in.dwsKey, err = signature.ParsePrivateKey(string(in.dwsPrivate)); err != nil {
		return nil, fmt.Errorf("dws_private.pem: %w", err)
	}
	if in.merchantPubKey, err = signature.ParsePublicKey(string(in.merchantPublic)); err != nil {
		return nil, fmt.Errorf("merchant_public.pem: %w", err)
	}
	h := sha256.New()
	parts := [][]byte{in.dwsPrivate, []byte(addURI), []byte(benchClientID), body}
	if customers > 0 {
		parts = append(parts, []byte("customers "+strconv.Itoa(customers)))
	}
	for _, part := range parts {
		_ = binary.Write(h, binary.BigEndian, uint64(len(part)))
		h.Write(part)
	}
	h.Sum(in.fingerprint[:0])
	return in, nil
}

// pool is a set of notifications signed ahead of the timed runs. Request i
// has requestId requestTime||%016d(i) and the signature sigs[i*256:]. All
// share one Request-Time, so the freshness check of the gateway passes for
// a day (maxPoolAge).
type pool struct {
	in          *inputs
	n           int
	requestTime string // milliseconds since the epoch, 13 digits
	sigs        []byte // n raw RSA signatures of sigBytes each
}

func (p *pool) appendRequestID(dst []byte, i int) []byte {
	dst = append(dst, p.requestTime...)
	var digits [16]byte
	for k := len(digits) - 1; k >= 0; k-- {
		digits[k] = byte('0' + i%10)
		i /= 10
	}
	return append(dst, digits[:]...)
}

// appendBody appends the body of notification i.
func (p *pool) appendBody(dst []byte, i int) []byte {
	dst = append(dst, p.in.templatePrefix...)
	dst = p.appendRequestID(dst, i)
	in := p.in
	if in.customers == 0 {
		return append(dst, in.templateSuffix...)
	}
	dst = append(dst, in.templateSuffix[:in.custAt]...)
	c := i % in.customers
	start := len(dst)
	dst = append(dst, in.templateSuffix[in.custAt:in.custAt+in.custLen]...)
	for k := len(dst) - 1; k >= start; k-- {
		dst[k] = byte('0' + c%10)
		c /= 10
	}
	return append(dst, in.templateSuffix[in.custAt+in.custLen:]...)
}

func (p *pool) bodyLen() int {
	return len(p.in.templatePrefix) + requestIDLen + len(p.in.templateSuffix)
}

// appendSignatureHeader appends the Signature header value of notification
// i the way DWS sends it (keyVersion 1).
func (p *pool) appendSignatureHeader(dst []byte, i int) []byte {
	return signature.AppendHeader(dst, 1, p.sigs[i*sigBytes:(i+1)*sigBytes])
}

// Pool cache file layout (all integers big-endian):
//
//	magic       8 bytes  "DWSPOOL1"
//	fingerprint 32 bytes of the key, uri, client id and template
//	requestTime int64    milliseconds
//	count       uint64
//	signatures  count × 256 bytes
const poolMagic = "DWSPOOL1"

// loadOrSignPool returns a pool of at least n notifications. A cached pool
// for the same inputs that is fresh enough is used as it is, or extended
// (same Request-Time, the missing notifications signed) when it is too
// small; otherwise a new pool of n is signed. Signing runs on every CPU and
// the result is cached.
func loadOrSignPool(in *inputs, cachePath string, n int) (*pool, error) {
	p, err := readPool(in, cachePath)
	switch {
	case err == nil && p.n >= n:
		logf("pre-signed pool: %d notifications from %s (Request-Time %s, %s old)",
			p.n, cachePath, p.requestTime, time.Since(msTime(p.requestTime)).Round(time.Minute))
		return p, nil
	case err == nil:
		logf("pre-signed pool: %s holds %d notifications, extending it to %d", cachePath, p.n, n)
	case errors.Is(err, os.ErrNotExist):
		logf("pre-signed pool: no cache at %s", cachePath)
		p = nil
	default:
		logf("pre-signed pool: not using %s: %v", cachePath, err)
		p = nil
	}
	if p == nil {
		rt := strconv.FormatInt(time.Now().UnixMilli(), 10)
		if len(rt) != 13 {
			return nil, fmt.Errorf("Request-Time %s is not 13 digits", rt)
		}
		p = &pool{in: in, requestTime: rt}
	}
	if err := p.signUpTo(n); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	if err := writePool(p, cachePath); err != nil {
		return nil, err
	}
	return p, nil
}

func msTime(ms string) time.Time {
	v, _ := strconv.ParseInt(ms, 10, 64)
	return time.UnixMilli(v)
}

// readPool reads a cached pool made from the same inputs within maxPoolAge.
func readPool(in *inputs, path string) (*pool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr struct {
		Magic       [8]byte
		Fingerprint [32]byte
		RequestTime int64
		Count       uint64
	}
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	switch age := time.Since(time.UnixMilli(hdr.RequestTime)); {
	case string(hdr.Magic[:]) != poolMagic:
		return nil, errors.New("not a pool file")
	case hdr.Fingerprint != in.fingerprint:
		return nil, errors.New("signed for other keys or another template")
	case age > maxPoolAge || age < -time.Minute:
		return nil, fmt.Errorf("signed %s ago; the gateway accepts Request-Time within 48h, the harness re-signs past %s", age.Round(time.Minute), maxPoolAge)
	case hdr.Count > 1<<24:
		return nil, fmt.Errorf("implausible count %d", hdr.Count)
	}
	p := &pool{in: in, n: int(hdr.Count), requestTime: strconv.FormatInt(hdr.RequestTime, 10)}
	p.sigs = make([]byte, p.n*sigBytes)
	if _, err := io.ReadFull(r, p.sigs); err != nil {
		return nil, fmt.Errorf("reading signatures: %w", err)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

func writePool(p *pool, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rt, _ := strconv.ParseInt(p.requestTime, 10, 64)
	_, _ = w.WriteString(poolMagic)
	_, _ = w.Write(p.in.fingerprint[:])
	_ = binary.Write(w, binary.BigEndian, rt)
	_ = binary.Write(w, binary.BigEndian, uint64(p.n))
	_, _ = w.Write(p.sigs)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// signUpTo signs notifications p.n..n-1 on every CPU and makes p.n = n.
func (p *pool) signUpTo(n int) error {
	from := p.n
	if from >= n {
		return nil
	}
	sigs := make([]byte, n*sigBytes)
	copy(sigs, p.sigs)
	workers := runtime.NumCPU()
	logf("pre-signing notifications %d..%d on %d CPUs (RSA-2048, about 1 ms each)...", from, n-1, workers)
	began := time.Now()
	var next, done atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d, todo := done.Load(), int64(n-from)
				el := time.Since(began)
				left := time.Duration(float64(el) / float64(max(d, 1)) * float64(todo-d))
				logf("  signed %d/%d (%.0f/s, about %s left)", d, todo, float64(d)/el.Seconds(), left.Round(time.Second))
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := make([]byte, 0, p.bodyLen())
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				body = p.appendBody(body[:0], i)
				d := signature.Digest(addURI, benchClientID, p.requestTime, body)
				sig, err := rsa.SignPKCS1v15(nil, p.in.dwsKey, crypto.SHA256, d[:])
				if err != nil || len(sig) != sigBytes {
					errOnce.Do(func() { firstErr = fmt.Errorf("signing notification %d: %v (%d bytes)", i, err, len(sig)) })
					return
				}
				copy(sigs[i*sigBytes:], sig)
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if firstErr != nil {
		return firstErr
	}
	p.sigs, p.n = sigs, n
	logf("pre-signed %d notifications in %s", n-from, time.Since(began).Round(time.Second))
	return nil
}

// check verifies a few of the pool's notifications exactly as the gateway
// will (signature.KeyRing with the configured public key), so that a broken
// cache or encoding shows up before anything is timed.
func (p *pool) check() error {
	pub, err := signature.ParsePublicKey(string(p.in.dwsPublic))
	if err != nil {
		return fmt.Errorf("dws_public.b64: %w", err)
	}
	ring := signature.NewKeyRing()
	if err := ring.Add(benchClientID, 1, pub); err != nil {
		return err
	}
	for _, i := range []int{0, p.n / 2, p.n - 1} {
		body := p.appendBody(nil, i)
		hdr := string(p.appendSignatureHeader(nil, i))
		if _, err := ring.Verify(benchClientID, addURI, p.requestTime, body, hdr); err != nil {
			return fmt.Errorf("pre-signed notification %d does not verify: %w", i, err)
		}
	}
	return nil
}

func cmdPresign(args []string) error {
	fs := flag.NewFlagSet("presign", flag.ExitOnError)
	c := commonFlags(fs)
	n := fs.Int("n", 150000, "notifications to pre-sign")
	_ = fs.Parse(args)
	in, err := loadInputs(c.keysDir, c.bodyPath, c.customers)
	if err != nil {
		return err
	}
	_, err = loadOrSignPool(in, c.poolPath(), *n)
	return err
}
