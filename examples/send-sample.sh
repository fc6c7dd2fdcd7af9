#!/usr/bin/env bash
# Sends one signed DWS (or Antom) notification to the gateway started from
# Caddyfile.example, signed exactly as DWS and Antom sign (RSA-SHA256 over
# "POST <uri>\n<Client-Id>.<Request-Time>.<body>"), with nothing but openssl
# and curl, and checks the signature on the gateway's answer.
#
#   ./examples/send-sample.sh [api] [requestId]
#
# api is addPaymentMethod (the default) or removePaymentMethod, sent to
# /dws/notify/<api>, or an Antom notification: notifyPayment, notifyCapture,
# notifyRefund, notifyDispute, notifyRegistrationStatus, notifyVaulting,
# notifySubscription or notifySubscriptionPayment, sent to
# /antom/notify/<api>. The body is examples/<api>.json. requestId replaces
# the sample's requestId, or for an Antom sample the first field of its
# idempotency key (paymentId, vaultingRequestId, ...: docs/antom.md).
# Without a requestId the sample's own is sent, so a second run is a duplicate
# (answered from the store; the backend does not see it again).
# Environment: GATEWAY (default http://localhost:8080), CLIENT_ID, KEY_DIR.
# The keys are DEMO KEYS (examples/demo-keys): never use them in production.
set -euo pipefail

api=${1:-addPaymentMethod}
request_id=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
gateway=${GATEWAY:-http://localhost:8080}
client_id=${CLIENT_ID:-2188120000000000}
key_dir=${KEY_DIR:-$here/demo-keys}
# The key directory as the user named it (KEY_DIR, or relative to how this
# script was called), for messages: no machine-specific absolute path.
key_dir_shown=${KEY_DIR:-$(dirname "$0")/demo-keys}

# Each API's family (the path it is served at in Caddyfile.example) and the
# top-level member a requestId replaces: for Antom, the first field of the
# API's idempotency key (notification/sample_test.go checks this table
# against the catalog).
case $api in
addPaymentMethod | removePaymentMethod) family=dws member=requestId ;;
notifyPayment | notifySubscriptionPayment) family=antom member=paymentId ;;
notifyCapture) family=antom member=captureId ;;
notifyRefund) family=antom member=refundId ;;
notifyDispute) family=antom member=disputeId ;;
notifyRegistrationStatus) family=antom member=registrationRequestId ;;
notifyVaulting) family=antom member=vaultingRequestId ;;
notifySubscription) family=antom member=subscriptionRequestId ;;
*)
	echo "usage: $0 [api] [requestId]; api is addPaymentMethod, removePaymentMethod, notifyPayment, notifyCapture, notifyRefund, notifyDispute, notifyRegistrationStatus, notifyVaulting, notifySubscription or notifySubscriptionPayment" >&2
	exit 2
	;;
esac
uri=/$family/notify/$api
# The requestId goes into the JSON body and a sed expression as it is, so
# only characters that need no escaping in either are accepted.
if [[ -n $request_id && ! $request_id =~ ^[A-Za-z0-9._:-]{1,64}$ ]]; then
	echo "$0: requestId must be 1 to 64 of A-Z a-z 0-9 . _ : - (use caddy dws-notify send --request-id for anything else)" >&2
	exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

body=$work/body.json
if [[ -n $request_id ]]; then
	# Replace the value of the member: the first one in the file, which in
	# every sample is the top-level one.
	grep -q "\"$member\": *\"" "$here/$api.json" || { echo "$0: no $member member found in $here/$api.json" >&2; exit 1; }
	sed -E "0,/(\"$member\": *\")[^\"]*\"/s//\1${request_id}\"/" "$here/$api.json" >"$body"
else
	cp "$here/$api.json" "$body"
fi

# Percent-encoded standard Base64, the way DWS sends the signature value.
sign() {
	openssl dgst -sha256 -sign "$key_dir/dws_private.pem" "$1" | base64 | tr -d '\n' |
		sed -e 's/+/%2B/g' -e 's#/#%2F#g' -e 's/=/%3D/g'
}

request_time=$(($(date +%s) * 1000))
{ printf 'POST %s\n%s.%s.' "$uri" "$client_id" "$request_time"; cat "$body"; } >"$work/signed-content"
signature="algorithm=RSA256,keyVersion=1,signature=$(sign "$work/signed-content")"

echo "POST $gateway$uri  (Client-Id $client_id, Request-Time $request_time)"
status=$(curl -sS -o "$work/answer" -D "$work/headers" -w '%{http_code}' -X POST "$gateway$uri" \
	-H "Content-Type: application/json; charset=UTF-8" \
	-H "Client-Id: $client_id" \
	-H "Request-Time: $request_time" \
	-H "Signature: $signature" \
	--data-binary "@$body")
echo "HTTP $status"
cat "$work/answer"
echo

# Verify the gateway's answer with the merchant's public key when it is signed.
header() { grep -i "^$1:" "$work/headers" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }
answer_sig=$(header Signature)
if [[ -n $answer_sig && -f $key_dir/merchant_public.pem ]]; then
	response_time=$(header Response-Time)
	{ printf 'POST %s\n%s.%s.' "$uri" "$client_id" "$response_time"; cat "$work/answer"; } >"$work/answer-content"
	encoded=${answer_sig##*signature=}
	printf '%b' "${encoded//%/\\x}" | base64 -d >"$work/answer-sig"
	if openssl dgst -sha256 -verify "$key_dir/merchant_public.pem" -signature "$work/answer-sig" "$work/answer-content" >/dev/null; then
		echo "answer signature: verified with $key_dir_shown/merchant_public.pem"
	else
		echo "answer signature: DOES NOT VERIFY" >&2
		exit 1
	fi
fi
