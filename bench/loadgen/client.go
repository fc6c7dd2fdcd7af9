package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/dwsnotify/dws_notify/signature"
)

// The load client speaks just enough HTTP/1.1 to drive the gateway: it
// assembles each request into a reused buffer (the pre-signed parts are
// copied, the 256-byte signature is Base64-encoded on the way, well under a
// microsecond), writes it in one call on a keep-alive connection, and reads
// the answer's status line, headers and Content-Length body into reused
// buffers. Nothing is allocated per request, so the generator's share of the
// two CPUs stays small and equal for every mode.

// requestHead is the part of every request before the Signature value.
func requestHead(p *pool, addr string) []byte {
	return fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json; charset=UTF-8\r\n"+
		"Client-Id: %s\r\nRequest-Time: %s\r\nContent-Length: %d\r\nSignature: ",
		addURI, addr, benchClientID, p.requestTime, p.bodyLen())
}

// expectation is what a correct answer looks like in a mode.
type expectation struct {
	envelope bool // the S/SUCCESS envelope (modes b and c)
	signed   bool // a Signature header (mode b); absent otherwise
}

func expectFor(m mode) expectation {
	return expectation{envelope: m.dws(), signed: m.signed()}
}

var (
	successPrefix = []byte(`{"result":{"resultStatus":"S","resultCode":"SUCCESS"`)
	codeMember    = []byte(`"resultCode":"`)
)

// clientConn is one keep-alive connection of one worker.
type clientConn struct {
	addr string
	head []byte
	p    *pool
	want expectation

	c    net.Conn
	br   *bufio.Reader
	req  []byte
	body []byte
}

func newClientConn(p *pool, addr string, want expectation) *clientConn {
	return &clientConn{
		addr: addr, head: requestHead(p, addr), p: p, want: want,
		req:  make([]byte, 0, 2048),
		body: make([]byte, 4096),
	}
}

func (cc *clientConn) dial() error {
	c, err := net.DialTimeout("tcp", cc.addr, 5*time.Second)
	if err != nil {
		return err
	}
	cc.c = c
	if cc.br == nil {
		cc.br = bufio.NewReaderSize(c, 8192)
	} else {
		cc.br.Reset(c)
	}
	return nil
}

func (cc *clientConn) close() {
	if cc.c != nil {
		cc.c.Close()
		cc.c = nil
	}
}

// errWrongAnswer is an answer that is not what the mode must produce; its
// text says how it differs.
type errWrongAnswer struct{ what string }

func (e errWrongAnswer) Error() string { return e.what }

// send sends notification i and reads the answer. A transport error closes
// the connection (the next send redials); a wrong answer is returned as
// errWrongAnswer with the connection kept.
func (cc *clientConn) send(i int) error {
	if cc.c == nil {
		if err := cc.dial(); err != nil {
			return err
		}
	}
	b := append(cc.req[:0], cc.head...)
	b = cc.p.appendSignatureHeader(b, i)
	b = append(b, "\r\n\r\n"...)
	b = cc.p.appendBody(b, i)
	cc.req = b
	if _, err := cc.c.Write(b); err != nil {
		cc.close()
		return err
	}
	status, signed, keep, body, err := cc.readAnswer()
	if err != nil {
		cc.close()
		return err
	}
	if !keep {
		cc.close()
	}
	return cc.want.check(status, signed, body)
}

// readAnswer reads one response with a Content-Length body.
func (cc *clientConn) readAnswer() (status int, signed, keep bool, body []byte, err error) {
	line, err := cc.br.ReadSlice('\n')
	if err != nil {
		return 0, false, false, nil, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, false, false, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, false, nil, fmt.Errorf("bad status line %q", line)
	}
	length, keep := -1, true
	for {
		line, err = cc.br.ReadSlice('\n')
		if err != nil {
			return 0, false, false, nil, err
		}
		if len(line) <= 2 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return 0, false, false, nil, fmt.Errorf("bad header line %q", line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.Atoi(string(value))
			if err != nil {
				return 0, false, false, nil, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Signature")):
			signed = true
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, false, false, nil, fmt.Errorf("Transfer-Encoding %q is not supported by the load client", value)
		}
	}
	if length < 0 {
		return 0, false, false, nil, errors.New("answer without Content-Length")
	}
	if length > len(cc.body) {
		cc.body = make([]byte, length)
	}
	if _, err := io.ReadFull(cc.br, cc.body[:length]); err != nil {
		return 0, false, false, nil, err
	}
	return status, signed, keep, cc.body[:length], nil
}

// check compares an answer with the expectation.
func (w expectation) check(status int, signed bool, body []byte) error {
	if status != http.StatusOK {
		return errWrongAnswer{fmt.Sprintf("HTTP %d", status)}
	}
	if !w.envelope {
		if !bytes.Equal(body, backendBody) {
			return errWrongAnswer{"body is not the backend's"}
		}
		return nil
	}
	if !bytes.HasPrefix(body, successPrefix) {
		code := "no resultCode"
		if i := bytes.Index(body, codeMember); i >= 0 {
			rest := body[i+len(codeMember):]
			if j := bytes.IndexByte(rest, '"'); j >= 0 {
				code = string(rest[:j])
			}
		}
		return errWrongAnswer{code}
	}
	if signed != w.signed {
		return errWrongAnswer{fmt.Sprintf("Signature header present=%v, want %v", signed, w.signed)}
	}
	return nil
}

// probe sends notification i with net/http and checks the answer in full:
// for modes b and c the envelope, Content-Type, Client-Id and
// Response-Time, and for mode b the answer's signature with the merchant's
// public key; for mode a the backend's body. It runs once per gateway
// before the load, so a misconfigured run fails instead of being timed.
func probe(p *pool, addr string, m mode, i int) error {
	body := p.appendBody(nil, i)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+addURI, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("Client-Id", benchClientID)
	req.Header.Set("Request-Time", p.requestTime)
	req.Header.Set("Signature", string(p.appendSignatureHeader(nil, i)))
	res, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if err := expectFor(m).check(res.StatusCode, res.Header.Get("Signature") != "", answer); err != nil {
		return fmt.Errorf("probe of mode %s: %w (answer %q)", m, err, answer)
	}
	if !m.dws() {
		return nil
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		return fmt.Errorf("probe of mode %s: Content-Type %q", m, ct)
	}
	if id := res.Header.Get("Client-Id"); id != benchClientID {
		return fmt.Errorf("probe of mode %s: Client-Id %q", m, id)
	}
	rt := res.Header.Get("Response-Time")
	if rt == "" {
		return fmt.Errorf("probe of mode %s: no Response-Time", m)
	}
	if !m.signed() {
		return nil
	}
	h, err := signature.ParseHeader(res.Header.Get("Signature"))
	if err != nil {
		return fmt.Errorf("probe of mode b: answer Signature: %w", err)
	}
	d := signature.Digest(addURI, benchClientID, rt, answer)
	if err := rsa.VerifyPKCS1v15(p.in.merchantPubKey, crypto.SHA256, d[:], h.Signature); err != nil {
		return fmt.Errorf("probe of mode b: the answer's signature does not verify with merchant_public.pem: %w", err)
	}
	return nil
}
