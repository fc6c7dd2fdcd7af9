package signature

import (
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestKeyRingAdd(t *testing.T) {
	f := fixtures()
	r := NewKeyRing()
	pub := &f.rsa.PublicKey
	tests := []struct {
		name    string
		client  string
		version int
		key     *rsa.PublicKey
		want    string // "" for success
	}{
		{"first", "c1", 1, pub, ""},
		{"duplicate", "c1", 1, pub, "already configured"},
		{"same key, other version", "c1", 0, pub, ""},
		{"other client, same version", "c2", 1, pub, ""},
		{"empty client", "", 1, pub, "empty client id"},
		{"negative version", "c1", -1, pub, "out of range"},
		{"version above int32", "c1", math.MaxInt32 + 1, pub, "out of range"},
		{"nil key", "c1", 5, nil, "nil public key"},
		{"empty key", "c1", 5, &rsa.PublicKey{}, "nil public key"},
		{"RSA-1024", "c1", 5, &f.rsa1024.PublicKey, "1024 bits"},
	}
	for _, tt := range tests {
		err := r.Add(tt.client, tt.version, tt.key)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Add: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: Add = %v, want error saying %q", tt.name, err, tt.want)
		}
	}
	if !r.HasClient("c1") || !r.HasClient("c2") || r.HasClient("c3") || r.HasClient("") {
		t.Error("HasClient wrong")
	}
	if got := r.Versions("c1"); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("Versions(c1) = %v", got)
	}
	if got := r.Versions("nobody"); got != nil {
		t.Errorf("Versions(nobody) = %v", got)
	}
	r.Versions("c1")[0] = 99
	if got := r.Versions("c1"); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("Versions returned the ring's own slice: %v", got)
	}
	var zero KeyRing
	if zero.HasClient("c1") || zero.Versions("c1") != nil {
		t.Error("zero KeyRing not empty")
	}
	if err := zero.Add("c1", 1, pub); err != nil || !zero.HasClient("c1") {
		t.Errorf("zero KeyRing Add: %v", err)
	}
}

func mustHeader(t testing.TB, key *rsa.PrivateKey, version int, uri, client, tm string, body []byte) string {
	t.Helper()
	h, err := SignatureHeader(key, version, uri, client, tm, body)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// headerWithoutVersion drops the keyVersion parameter from a header.
func headerWithoutVersion(h string) string {
	alg, rest, _ := strings.Cut(h, ",")
	_, sig, _ := strings.Cut(rest, ",")
	return alg + "," + sig
}

func TestKeyRingVerify(t *testing.T) {
	k1, k2 := testKey(), otherKey()
	const client, uri, tm = "2188120000000000", "/dws/notify/addPaymentMethod", "2025-05-19T01:52:32Z"
	body := []byte(`{"requestId":"r-1","referenceCustomerId":"c-9"}`)
	r := NewKeyRing()
	for v, k := range map[int]*rsa.PrivateKey{2: k2, 1: k1} {
		if err := r.Add(client, v, &k.PublicKey); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Add("other-client", 1, &k1.PublicKey); err != nil {
		t.Fatal(err)
	}
	h1 := mustHeader(t, k1, 1, uri, client, tm, body)
	h2 := mustHeader(t, k2, 2, uri, client, tm, body)
	h3 := strings.Replace(h2, "keyVersion=2", "keyVersion=3", 1)
	short := "algorithm=RSA256,keyVersion=1,signature=" + base64.StdEncoding.EncodeToString(make([]byte, 255))

	tests := []struct {
		name              string
		client, uri, time string
		body              []byte
		header            string
		wantVersion       int
		wantErr           error
	}{
		{"version 1", client, uri, tm, body, h1, 1, nil},
		{"version 2", client, uri, tm, body, h2, 2, nil},
		{"no keyVersion, signed by the newest key", client, uri, tm, body, headerWithoutVersion(h2), 2, nil},
		{"no keyVersion, signed by the older key", client, uri, tm, body, headerWithoutVersion(h1), 1, nil},
		{"no keyVersion, tampered body", client, uri, tm, append(slices.Clone(body), ' '), headerWithoutVersion(h1), NoKeyVersion, ErrVerificationFailed},
		{"keyVersion names the wrong key", client, uri, tm, body, strings.Replace(h1, "keyVersion=1", "keyVersion=2", 1), 2, ErrVerificationFailed},
		{"unknown keyVersion", client, uri, tm, body, h3, 0, ErrUnknownKeyVersion},
		{"keyVersion 0 not configured", client, uri, tm, body, strings.Replace(h1, "keyVersion=1", "keyVersion=0", 1), 0, ErrUnknownKeyVersion},
		{"unknown client", "nobody", uri, tm, body, h1, 0, ErrUnknownKeyVersion},
		{"client whose content differs", "other-client", uri, tm, body, h1, 1, ErrVerificationFailed},
		{"empty header", client, uri, tm, body, "", 0, ErrMissing},
		{"malformed header", client, uri, tm, body, "algorithm=RSA256", 0, ErrMalformed},
		{"unsupported algorithm", client, uri, tm, body, strings.Replace(h1, "RSA256", "ECC224", 1), 0, ErrUnsupportedAlgorithm},
		{"bad encoding", client, uri, tm, body, h1 + "%zz", 0, ErrBadEncoding},
		{"signature too short", client, uri, tm, body, short, 1, ErrVerificationFailed},
		{"signature too short, no keyVersion", client, uri, tm, body, headerWithoutVersion(short), NoKeyVersion, ErrVerificationFailed},
		{"tampered body", client, uri, tm, append(slices.Clone(body), ' '), h1, 1, ErrVerificationFailed},
		{"other uri", client, uri + "?x=1", tm, body, h1, 1, ErrVerificationFailed},
		{"other time", client, uri, "2025-05-19T01:52:33Z", body, h1, 1, ErrVerificationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := r.Verify(tt.client, tt.uri, tt.time, tt.body, tt.header)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify error %v, want %v", err, tt.wantErr)
			}
			if v != tt.wantVersion {
				t.Errorf("Verify version %d, want %d", v, tt.wantVersion)
			}
		})
	}
	// The wrong-length check names the lengths (crypto/rsa would reject the
	// signature too, without saying why).
	_, err := r.Verify(client, uri, tm, body, short)
	if want := "signature is 255 bytes, key version 1 needs 256"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("short signature: %v, want a message saying %q", err, want)
	}
}

// TestKeyRingConcurrent runs verifiers while keys are added; run with -race.
func TestKeyRingConcurrent(t *testing.T) {
	k := testKey()
	r := ringWith(t, "c", &k.PublicKey)
	body := []byte(`{}`)
	h := mustHeader(t, k, 1, "/n", "c", "1685599933871", body)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for i := 0; i < 50; i++ {
				if _, err := r.Verify("c", "/n", "1685599933871", body, h); err != nil {
					t.Error(err)
					return
				}
				r.HasClient(fmt.Sprint("x", i))
			}
		})
	}
	for i := 0; i < 50; i++ {
		if err := r.Add(fmt.Sprint("x", i), i, &k.PublicKey); err != nil {
			t.Fatal(err)
		}
		if err := r.Add("c", i+2, &k.PublicKey); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if got := len(r.Versions("c")); got != 51 {
		t.Fatalf("%d versions for c, want 51", got)
	}
}

// TestVerifyAllocations checks that Verify with an RSA-2048 key allocates
// nothing: the signature, digest and encoded message live in pooled
// scratch space and the RSA operation's numbers on the stack
// (rsa.VerifyPKCS1v15 allocates 9 times per call).
func TestVerifyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	k := testKey()
	body := make([]byte, 1024)
	r := ringWith(t, "c", &k.PublicKey)
	h := mustHeader(t, k, 1, "/n", "c", "1685599933871", body)
	if n := testing.AllocsPerRun(50, func() {
		if _, err := r.Verify("c", "/n", "1685599933871", body, h); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Verify allocates %.0f times per call, want 0", n)
	}
	// Parsed into the caller's buffer, then verified: no allocation either.
	buf := make([]byte, 512)
	if n := testing.AllocsPerRun(50, func() {
		parsed, err := ParseHeaderInto(h, buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.VerifyParsed("c", "/n", "1685599933871", body, parsed); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("ParseHeaderInto and VerifyParsed allocate %.0f times per call, want 0", n)
	}
}

// countingRing returns a key ring whose RSA verifications are counted.
func countingRing() (*KeyRing, *atomic.Int64) {
	var n atomic.Int64
	return NewKeyRingVerifying(func(key *rsa.PublicKey, digest, sig []byte) error {
		n.Add(1)
		return VerifyRSA(key, digest, sig)
	}), &n
}

// TestKeyRingKeySelection covers the choice of key (SPEC §1.2): the
// Signature's keyVersion, else the Key-Version header, else every key
// newest first; and counts the RSA verifications each choice costs.
func TestKeyRingKeySelection(t *testing.T) {
	k1, k2, forger := testKey(), otherKey(), thirdKey()
	const client, uri, tm = "2188120000000000", "/dws/notify/addPaymentMethod", "1685599933871123456"
	body := []byte(`{"requestId":"r-2"}`)
	r, rsaOps := countingRing()
	for v, k := range map[int]*rsa.PrivateKey{1: k1, 2: k2} {
		if err := r.Add(client, v, &k.PublicKey); err != nil {
			t.Fatal(err)
		}
	}
	h1 := mustHeader(t, k1, 1, uri, client, tm, body)
	h2 := mustHeader(t, k2, 2, uri, client, tm, body)
	forged := mustHeader(t, forger, 1, uri, client, tm, body)

	tests := []struct {
		name, header, keyVersionHeader string
		wantVersion                    int
		wantErr                        error
		wantRSA                        int64
	}{
		{"keyVersion 1", h1, "", 1, nil, 1},
		{"keyVersion 2", h2, "", 2, nil, 1},
		{"keyVersion wins over Key-Version", h1, "2", 1, nil, 1},
		{"keyVersion names the wrong key", strings.Replace(h1, "keyVersion=1", "keyVersion=2", 1), "", 2, ErrVerificationFailed, 1},
		{"Key-Version 1", headerWithoutVersion(h1), "1", 1, nil, 1},
		{"Key-Version 2", headerWithoutVersion(h2), "2", 2, nil, 1},
		{"Key-Version with leading zeros", headerWithoutVersion(h2), "0002", 2, nil, 1},
		{"Key-Version, 11 digits with leading zeros", headerWithoutVersion(h2), "00000000002", 2, nil, 1},
		{"Key-Version names the wrong key", headerWithoutVersion(h1), "2", 2, ErrVerificationFailed, 1},
		{"Key-Version not configured", headerWithoutVersion(h1), "3", 0, ErrUnknownKeyVersion, 0},
		{"Key-Version not a number", headerWithoutVersion(h1), "v1", 0, ErrMalformed, 0},
		{"Key-Version negative", headerWithoutVersion(h1), "-1", 0, ErrMalformed, 0},
		{"Key-Version above int32", headerWithoutVersion(h1), "2147483648", 0, ErrMalformed, 0},
		{"no version, newest key signed", headerWithoutVersion(h2), "", 2, nil, 1},
		{"no version, older key signed", headerWithoutVersion(h1), "", 1, nil, 2},
		{"no version, forged", headerWithoutVersion(forged), "", NoKeyVersion, ErrVerificationFailed, 2},
		{"keyVersion 1, forged", forged, "", 1, ErrVerificationFailed, 1},
		{"malformed header", "algorithm=RSA256", "1", 0, ErrMalformed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := rsaOps.Load()
			v, err := r.VerifyNotification(client, uri, tm, body, tt.header, tt.keyVersionHeader)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if v != tt.wantVersion {
				t.Errorf("version %d, want %d", v, tt.wantVersion)
			}
			if got := rsaOps.Load() - before; got != tt.wantRSA {
				t.Errorf("%d RSA verifications, want %d", got, tt.wantRSA)
			}
			// The header parsed first, then verified: the same answer, at
			// the same cost.
			var buf [512]byte
			parsed, perr := ParseHeaderInto(tt.header, buf[:])
			if perr != nil {
				if err == nil || err.Error() != perr.Error() {
					t.Errorf("ParseHeaderInto error %v, VerifyNotification's %v", perr, err)
				}
				return
			}
			if kerr := parsed.UseKeyVersionHeader(tt.keyVersionHeader); kerr != nil {
				if err == nil || err.Error() != kerr.Error() {
					t.Errorf("UseKeyVersionHeader error %v, VerifyNotification's %v", kerr, err)
				}
				return
			}
			before = rsaOps.Load()
			pv, err2 := r.VerifyParsed(client, uri, tm, body, parsed)
			if pv != v || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
				t.Errorf("VerifyParsed: %d, %v; VerifyNotification: %d, %v", pv, err2, v, err)
			}
			if got := rsaOps.Load() - before; got != tt.wantRSA {
				t.Errorf("VerifyParsed: %d RSA verifications, want %d", got, tt.wantRSA)
			}
		})
	}

	// A forged signature without keyVersion costs one RSA verification per
	// configured key, however many keys there are, and never more.
	for v := 3; v <= 5; v++ {
		if err := r.Add(client, v, &forger.PublicKey); err != nil {
			t.Fatal(err)
		}
	}
	other := mustHeader(t, otherKey(), 9, uri, client, tm, append(slices.Clone(body), ' '))
	before := rsaOps.Load()
	if v, err := r.Verify(client, uri, tm, body, headerWithoutVersion(other)); !errors.Is(err, ErrVerificationFailed) || v != NoKeyVersion {
		t.Fatalf("forged, 5 keys: %d, %v", v, err)
	}
	if got := rsaOps.Load() - before; got != 5 {
		t.Fatalf("forged signature against 5 keys: %d RSA verifications, want 5", got)
	}
	// The error names the versions tried, never the signature.
	_, err := r.Verify(client, uri, tm, body, headerWithoutVersion(other))
	if err == nil || !strings.Contains(err.Error(), "versions [1 2 3 4 5]") {
		t.Errorf("error %v does not name the versions tried", err)
	}
	// The newest key is tried first: a notification signed by version 3's
	// key (the forger's, configured as 3, 4 and 5) verifies as version 5.
	if v, err := r.Verify(client, uri, tm, body, headerWithoutVersion(forged)); err != nil || v != 5 {
		t.Fatalf("no keyVersion, key of versions 3-5: %d, %v; want 5", v, err)
	}
}

// TestKeyRingMixedKeySizes is a rotation between keys of different sizes
// (SPEC §1.2): a notification that names no version is tried against every
// key, newest first, and a key whose size differs from the signature's is
// passed over for the next one, without an RSA operation; it does not end
// the search.
func TestKeyRingMixedKeySizes(t *testing.T) {
	pem, err := os.ReadFile("testdata/rsa/key-4096-e65537.pem")
	if err != nil {
		t.Fatal(err)
	}
	k4096, err := ParsePrivateKey(string(pem))
	if err != nil {
		t.Fatal(err)
	}
	k2048 := testKey()
	const client, uri, tm = "2188120000000000", "/dws/notify/addPaymentMethod", "2025-05-19T01:52:32Z"
	body := []byte(`{"requestId":"r-mixed"}`)
	h2048 := mustHeader(t, k2048, 1, uri, client, tm, body)
	h4096 := mustHeader(t, k4096, 2, uri, client, tm, body)

	tests := []struct {
		name        string
		keys        map[int]*rsa.PrivateKey
		header      string
		wantVersion int
	}{
		// The newest key (v2) is RSA-4096; the sender still signs with v1.
		{"newest larger, older signed", map[int]*rsa.PrivateKey{1: k2048, 2: k4096}, headerWithoutVersion(h2048), 1},
		{"newest larger, newest signed", map[int]*rsa.PrivateKey{1: k2048, 2: k4096}, headerWithoutVersion(h4096), 2},
		// The other way round: the newest key is the smaller one.
		{"newest smaller, older signed", map[int]*rsa.PrivateKey{1: k4096, 2: k2048}, headerWithoutVersion(h4096), 1},
		{"newest smaller, newest signed", map[int]*rsa.PrivateKey{1: k4096, 2: k2048}, headerWithoutVersion(h2048), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, rsaOps := countingRing()
			for v, k := range tt.keys {
				if err := r.Add(client, v, &k.PublicKey); err != nil {
					t.Fatal(err)
				}
			}
			v, err := r.VerifyNotification(client, uri, tm, body, tt.header, "")
			if err != nil || v != tt.wantVersion {
				t.Fatalf("VerifyNotification = %d, %v; want %d, nil", v, err, tt.wantVersion)
			}
			// The key of the other size costs no RSA operation.
			if got := rsaOps.Load(); got != 1 {
				t.Errorf("%d RSA verifications, want 1", got)
			}
			// A tampered body is still refused after every key was tried.
			tampered := append(slices.Clone(body), ' ')
			if v, err := r.VerifyNotification(client, uri, tm, tampered, tt.header, ""); !errors.Is(err, ErrVerificationFailed) || v != NoKeyVersion {
				t.Errorf("tampered body: %d, %v; want NoKeyVersion, ErrVerificationFailed", v, err)
			}
		})
	}
}
