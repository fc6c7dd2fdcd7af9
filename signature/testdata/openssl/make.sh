#!/bin/sh
# Regenerates the OpenSSL interoperability fixtures of package signature.
#
# Everything here is made by the openssl command line, independently of the
# Go code: a throwaway RSA-2048 test key (never used anywhere else) in the
# formats operators receive, and for each case the exact signed content
#
#   POST <uri>\n<client_id>.<time>.<body>
#
# signed with `openssl dgst -sha256 -sign` (RSASSA-PKCS1-v1_5, SHA-256),
# Base64-encoded and percent-encoded into a Signature header value.
# openssl_test.go checks that the package verifies every header, rebuilds the
# same content byte for byte, parses every key file, and, PKCS#1 v1.5 being
# deterministic, produces the very same header when it signs with key.pem.
#
# Run from anywhere: sh signature/testdata/openssl/make.sh
set -eu
cd "$(dirname "$0")"
rm -rf cases
openssl version

# Keys: PKCS#8 and PKCS#1 private, SubjectPublicKeyInfo PEM and bare Base64
# DER (the way DWS hands out its key), PKCS#1 public.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem
openssl rsa -in key.pem -traditional -out key-pkcs1.pem
openssl pkey -in key.pem -pubout -out pub.pem
openssl rsa -in key.pem -RSAPublicKey_out -out pub-pkcs1.pem
openssl pkey -in key.pem -pubout -outform DER | openssl base64 -A > pub.b64

# mkcase NAME URI CLIENT_ID TIME KEY_VERSION < BODY
mkcase() {
	d=cases/$1
	mkdir -p "$d"
	printf '%s' "$2" > "$d/uri"
	printf '%s' "$3" > "$d/client_id"
	printf '%s' "$4" > "$d/time"
	printf '%s' "$5" > "$d/key_version"
	cat > "$d/body"
	{ printf 'POST %s\n%s.%s.' "$2" "$3" "$4"; cat "$d/body"; } > "$d/content"
	openssl dgst -sha256 -sign key.pem -out "$d/signature.bin" "$d/content"
	openssl dgst -sha256 -verify pub.pem -signature "$d/signature.bin" "$d/content"
	b64=$(openssl base64 -A -in "$d/signature.bin")
	pct=$(printf '%s' "$b64" | sed -e 's/+/%2B/g' -e 's,/,%2F,g' -e 's/=/%3D/g')
	# As the SDKs send it, and as the documents print it (spaces, raw Base64).
	printf 'algorithm=RSA256,keyVersion=%s,signature=%s' "$5" "$pct" > "$d/header"
	printf 'algorithm=RSA256, keyVersion=%s, signature=%s' "$5" "$b64" > "$d/header-docform"
}

# A compact notify addPaymentMethod body, epoch-millisecond time.
printf '%s' '{"referenceCustomerId":"216610000006358131449","requestId":"2015032412007101547201355678","paymentMethodDetail":{"paymentMethodDetailType":"CARD","card":{"cardToken":"ALIPAYyR6Sp+Lx/5dfS3BA3N1o8h3N0s1aWb0KBaPYH3G3pZ6Wt6zDUrvRDEuwYdH4QZ0/=","brand":"VISA","expiryYear":"2029","expiryMonth":"07"}},"operateSource":"MERCHANT"}' |
	mkcase add-epoch-ms /dws/notify/addPaymentMethod 2188120000000000 1685599933871 1

# A pretty-printed body with non-ASCII text, "&" and a trailing newline;
# a query string in the URI; ISO 8601 time with a colon offset.
cat <<'BODY' | mkcase remove-iso-offset-query '/dws/notify/removePaymentMethod?source=dws&v=2' 2188120000000000 2019-05-28T12:12:12+08:00 2
{
  "referenceUserId": "u-9 张三 & Søren",
  "requestId": "9f1c6a1e-7d2b-4d53-9a63-2f0e0c1b8a77",
  "paymentMethodDetail": {
    "paymentMethodDetailType": "card",
    "card": {"cardToken": "tok_%2B+/="}
  }
}
BODY

# An acknowledgement body (what the gateway signs), fractional-second UTC
# time, keyVersion 0.
printf '%s' '{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}' |
	mkcase ack-fraction-z /notify SANDBOX_5YEV2N2ZV8LC00920 2025-02-20T08:51:49.09Z 0
