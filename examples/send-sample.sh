#!/usr/bin/env bash
# Sends one signed DWS notification to the gateway started from
# Caddyfile.example, signed exactly as DWS signs (RSA-SHA256 over
# "POST <uri>\n<Client-Id>.<Request-Time>.<body>"), with nothing but openssl
# and curl, and checks the signature on the gateway's answer.
#
#   ./examples/send-sample.sh [addPaymentMethod|removePaymentMethod] [requestId]
#
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
uri=/dws/notify/$api

case $api in
addPaymentMethod | removePaymentMethod) ;;
*) echo "usage: $0 [addPaymentMethod|removePaymentMethod] [requestId]" >&2; exit 2 ;;
esac
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
	# Replace the value of the requestId member: the first one in the file,
	# which in both samples is the top-level one.
	sed -E "0,/(\"requestId\": *\")[^\"]*\"/s//\1${request_id}\"/" "$here/$api.json" >"$body"
	grep -q '"requestId": *"' "$here/$api.json" || { echo "$0: no requestId member found in $here/$api.json" >&2; exit 1; }
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
