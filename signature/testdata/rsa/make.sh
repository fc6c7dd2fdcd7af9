#!/bin/sh
# Regenerates the fixtures of the prepared-key RSA verifier's differential
# tests and fuzz target (rsaverify_test.go), with the openssl command line,
# independently of the Go code:
#
#   key-<bits>-e<exponent>.pem   throwaway RSA test keys (PKCS#8) of the
#                                sizes and public exponents DWS could use
#                                and the edges around them (odd bit lengths,
#                                e = 3, 17, 65537 and 2^31-1, the largest
#                                exponent crypto/rsa accepts);
#   key-*.sig                    openssl dgst -sha256 -sign of message.txt
#                                with that key (RSASSA-PKCS1-v1_5, SHA-256);
#   primes.txt                   random primes of several sizes (one per
#                                line, hex, "<bits> <hex>"): the fuzz target
#                                multiplies two of them into a fresh key,
#                                with any odd exponent the fuzzer picks.
#
# Keys and primes are made only when missing, so a re-run reproduces the
# signatures byte for byte; delete them to start over.
#
# Run from anywhere: sh signature/testdata/rsa/make.sh
set -eu
cd "$(dirname "$0")"
openssl version

printf 'The quick brown fox notifies addPaymentMethod.\n' >message.txt
for spec in 2048:65537 2048:3 2048:2147483647 2049:17 3071:3 3072:65537 3072:3 4096:65537 4096:3; do
	bits=${spec%%:*}
	e=${spec#*:}
	key="key-$bits-e$e.pem"
	[ -f "$key" ] || openssl genpkey -quiet -algorithm RSA -pkeyopt "rsa_keygen_bits:$bits" -pkeyopt "rsa_keygen_pubexp:$e" -out "$key"
	openssl dgst -sha256 -sign "$key" -out "key-$bits-e$e.sig" message.txt
	openssl dgst -sha256 -prverify "$key" -signature "key-$bits-e$e.sig" message.txt >/dev/null
done

# Each prime p is drawn until p-1 is coprime with 3 and 5 (p mod 3 = 2,
# p mod 5 != 1; as 16 = 1 modulo both, the sum of the hex digits gives
# the residue), so that every pair makes a key for e = 3 and e = 5 too.
prime() {
	while :; do
		p="$(openssl prime -generate -bits "$1" -hex)"
		if printf '%s\n' "$p" | awk '{ s = 0; for (i = 1; i <= length($0); i++) s += index("0123456789ABCDEF", substr(toupper($0), i, 1)) - 1; exit !(s % 3 == 2 && s % 5 != 1) }'; then
			printf '%s\n' "$p"
			return
		fi
	done
}
if [ ! -f primes.txt ]; then
	for bits in 512 512 1023 1024 1024 1024 1024 1025 1025 1025 1536 1536 1536 1536 2048 2048 2048 2048 2048; do
		printf '%s %s\n' "$bits" "$(prime "$bits")"
	done >primes.txt.new
	mv primes.txt.new primes.txt
fi
