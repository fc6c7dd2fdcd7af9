#!/bin/sh
# Regenerates the OpenSSL interoperability fixtures of package signature.
#
# Everything here is made by the openssl command line, independently of the
# Go code: throwaway RSA-2048 test keys (never used anywhere else) in the
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
# cases/ are signed with key.pem. sdk/ are signed the way Alipay's SDKs sign
# (global-open-sdk-go, global-open-sdk-java): the Base64 signature passed
# through url.QueryEscape / URLEncoder.encode, which for the Base64 alphabet
# turns exactly "+" into %2B, "/" into %2F and "=" into %3D; keyVersion
# present or absent; a Key-Version request header or none; Request-Time as
# epoch seconds, milliseconds, microseconds or nanoseconds (19 digits, as
# the Go SDK sent up to v1.2.18). They are signed with key.pem (version 1)
# or key2.pem (version 2), and sdk_test.go verifies them against a key ring
# holding both, as a gateway in the middle of a DWS key rotation would.
#
# The keys are made only when missing, so a re-run reproduces every case
# byte for byte (`git diff` stays empty); delete key.pem and key2.pem to
# start over with new keys.
#
# Run from anywhere: sh signature/testdata/openssl/make.sh
set -eu
cd "$(dirname "$0")"
rm -rf cases sdk
openssl version

# Keys: PKCS#8 and PKCS#1 private, SubjectPublicKeyInfo PEM and bare Base64
# DER (the way DWS hands out its key), PKCS#1 public.
[ -f key.pem ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem
openssl rsa -in key.pem -traditional -out key-pkcs1.pem
openssl pkey -in key.pem -pubout -out pub.pem
openssl rsa -in key.pem -RSAPublicKey_out -out pub-pkcs1.pem
openssl pkey -in key.pem -pubout -outform DER | openssl base64 -A > pub.b64
# The second DWS key of a rotation (version 2), in the SDKs' bare forms:
# Base64 of the PKCS#8 DER private key, Base64 of the SPKI DER public key.
[ -f key2.pem ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key2.pem
openssl pkcs8 -topk8 -nocrypt -in key2.pem -outform DER | openssl base64 -A > key2.b64
openssl pkey -in key2.pem -pubout -outform DER | openssl base64 -A > pub2.b64
openssl pkey -in key2.pem -pubout -out pub2.pem

# queryescape < BASE64: url.QueryEscape of a standard Base64 text.
queryescape() {
	sed -e 's/+/%2B/g' -e 's,/,%2F,g' -e 's/=/%3D/g'
}

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
	pct=$(printf '%s' "$b64" | queryescape)
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

# mksdk NAME URI TIME SIGNED_BY KEYVERSION_PARAM KEY_VERSION_HEADER < BODY
# SIGNED_BY is the version of the key that signs (1: key.pem, 2: key2.pem);
# KEYVERSION_PARAM is yes or no (keyVersion in the Signature header);
# KEY_VERSION_HEADER is the Key-Version header's value, or - for none.
mksdk() {
	d=sdk/$1
	mkdir -p "$d"
	key=key.pem
	[ "$4" = 1 ] || key=key2.pem
	client=2188120000000000
	printf '%s' "$2" > "$d/uri"
	printf '%s' "$client" > "$d/client_id"
	printf '%s' "$3" > "$d/time"
	printf '%s' "$4" > "$d/signed_by"
	cat > "$d/body"
	{ printf 'POST %s\n%s.%s.' "$2" "$client" "$3"; cat "$d/body"; } > "$d/content"
	openssl dgst -sha256 -sign "$key" -out "$d/signature.bin" "$d/content"
	openssl dgst -sha256 -prverify "$key" -signature "$d/signature.bin" "$d/content"
	pct=$(openssl base64 -A -in "$d/signature.bin" | queryescape)
	if [ "$5" = yes ]; then
		printf 'algorithm=RSA256,keyVersion=%s,signature=%s' "$4" "$pct" > "$d/header"
	else
		printf 'algorithm=RSA256,signature=%s' "$pct" > "$d/header"
	fi
	[ "$6" = - ] || printf '%s' "$6" > "$d/key_version_header"
}

add='{"referenceCustomerId":"216610000006358131449","requestId":"%s","paymentMethodDetail":{"paymentMethodDetailType":"CARD","card":{"cardToken":"ALIPAYyR6Sp+Lx/5dfS3BA3N1o8h3N0s1aWb0KBaPYH3G3pZ6Wt6zDUrvRDEuwYdH4QZ0/=","brand":"VISA","expiryYear":"2029","expiryMonth":"07"}},"operateSource":"MERCHANT"}'
remove='{"referenceUserId":"u-216610000006358131449","requestId":"%s","paymentMethodDetail":{"paymentMethodDetailType":"card","card":{"cardToken":"ALIPAYyR6Sp+Lx/5dfS3BA3N1o8h3N0s1aWb0KBaPYH3G3pZ6Wt6zDUrvRDEuwYdH4QZ0/="}},"operateSource":"MERCHANT"}'
addURI=/dws/notify/addPaymentMethod
removeURI=/dws/notify/removePaymentMethod

# What the SDKs send today: keyVersion in the Signature and in Key-Version,
# epoch milliseconds.
printf "$add" sdk-v1-ms | mksdk v1-keyversion-millis $addURI 1685599933871 1 yes 1
# The rotation outage: signed by the old key, no keyVersion, no Key-Version;
# the Go SDK's nanosecond Request-Time.
printf "$add" sdk-v1-ns | mksdk v1-no-keyversion-nanos $addURI 1685599933871123456 1 no -
# No keyVersion in the Signature, the version in Key-Version only.
printf "$remove" sdk-v1-kvh | mksdk v1-key-version-header-only "$removeURI?source=sdk" 1685599933871 1 no 1
# The new key, named in both places, nanoseconds.
printf "$add" sdk-v2-ns | mksdk v2-keyversion-nanos $addURI 1685599933871123456 2 yes 2
# The new key without any version, microseconds.
printf "$remove" sdk-v2-us | mksdk v2-no-keyversion-micros $removeURI 1685599933871123 2 no -
# The old key named, epoch seconds.
printf "$add" sdk-v1-s | mksdk v1-keyversion-seconds $addURI 1685599933 1 yes 1
