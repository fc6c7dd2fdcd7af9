// Package notifylog writes the one log line of a notification, and names
// a notification's idempotency key in logs and answers. It carries
// identifiers, the sender's address, the outcome and timings; never card
// fields, bodies, keys or signature values, and every sender-controlled
// string is cut to dwshttp.MaxSenderText bytes (a validated idempotency
// key to notification.MaxKeyLength: KeyField). It knows nothing of
// Caddy: caddymodule fills a Line from the request's exchange.
package notifylog

import (
	"net"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dwsnotify/dws_notify/dwshttp"
	"github.com/dwsnotify/dws_notify/dwsmetrics"
	"github.com/dwsnotify/dws_notify/notification"
)

// Line is what the log line of one notification says.
type Line struct {
	API      string            // the api field: the API's name, or the unknown label
	Def      *notification.API // the API; nil when no API was found for the path
	Key      string            // the idempotency key (the requestId for DWS)
	ClientID string
	// RemoteAddr is the connection's peer; ClientIP the address Caddy
	// attributes the request to ("" when unknown).
	RemoteAddr, ClientIP string

	Outcome  string
	Code     notification.Code
	Status   int // HTTP status of the answer
	Message  string
	Duration time.Duration

	Verified       bool // the signature verified: KeyVersion is logged
	KeyVersion     int
	BackendStatus  int // 0 when the backend wrote nothing or was not called
	BackendTime    time.Duration
	Replayed       bool // a replay: ReplayedStatus is the first copy's backend status
	ReplayedStatus int
	Stage          string // where a refusal happened, "" for anything else
	IDMissing      string // a verified notification refused by the field rules: why no key could be read
	SigReason      string
	Err            error // the internal cause of a U
}

// Level is the level of a notification's log line: WARN for what needs
// someone (U: DWS resends, but a cause to look at; a business rejection
// to follow up; a requestId reused with other content; a notification DWS
// sent that broke the field rules), INFO for the rest.
func Level(l *Line) zapcore.Level {
	switch {
	case l.Code == notification.UnknownException,
		l.Outcome == dwsmetrics.OutcomeBusinessRejected,
		l.Outcome == dwsmetrics.OutcomeConflict,
		l.Stage == dwsmetrics.StageFieldRules:
		return zapcore.WarnLevel
	}
	return zapcore.InfoLevel
}

// fieldCount is the number of fields Write writes for l, so that their
// slice is allocated once and no larger than needed.
func fieldCount(l *Line) int {
	n := 10 // api, request_id (or key), client_id, remote_ip, remote_port, client_ip, outcome, result_code, status, duration
	for _, present := range [...]bool{l.Verified, l.Replayed, l.Stage != "", l.IDMissing != "", l.SigReason != "",
		l.Code == notification.ParamIllegal && l.Message != "", l.Err != nil} {
		if present {
			n++
		}
	}
	if l.BackendStatus != 0 || l.BackendTime != 0 {
		n += 2
	}
	return n
}

// Write writes l's line to ce.
func Write(ce *zapcore.CheckedEntry, l *Line) {
	fields := make([]zap.Field, 0, fieldCount(l))
	fields = append(fields,
		zap.String("api", l.API),
		KeyField(l.Def, l.Key),
		zap.String("client_id", l.ClientID),
	)
	fields = appendRemote(fields, l.RemoteAddr, l.ClientIP)
	fields = append(fields,
		zap.String("outcome", l.Outcome),
		zap.String("result_code", string(l.Code)),
		zap.Int("status", l.Status),
		zap.Duration("duration", l.Duration),
	)
	if l.Verified {
		fields = append(fields, zap.Int("key_version", l.KeyVersion))
	}
	if l.BackendStatus != 0 || l.BackendTime != 0 {
		fields = append(fields, zap.Int("backend_status", l.BackendStatus), zap.Duration("backend_duration", l.BackendTime))
	}
	if l.Replayed {
		fields = append(fields, zap.Int("replayed_backend_status", l.ReplayedStatus))
	}
	if l.Stage != "" {
		fields = append(fields, zap.String("refused_at", l.Stage))
	}
	if l.IDMissing != "" {
		name := "request_id_unavailable"
		if IsAntom(l.Def) {
			name = "key_unavailable"
		}
		fields = append(fields, zap.String(name, l.IDMissing))
	}
	if l.SigReason != "" {
		fields = append(fields, zap.String("signature_failure", l.SigReason))
	}
	if l.Code == notification.ParamIllegal && l.Message != "" {
		fields = append(fields, zap.String("reason", l.Message))
	}
	if l.Err != nil {
		fields = append(fields, zap.String("error", l.Err.Error()))
	}
	ce.Write(fields...)
}

// appendRemote appends the sender's address: remote_ip and remote_port of
// the connection, and client_ip, the address the server attributes the
// request to (the same as remote_ip unless a trusted proxy names the
// client).
func appendRemote(fields []zap.Field, remoteAddr, clientIP string) []zap.Field {
	host, port := dwshttp.SenderText(remoteAddr), ""
	if strings.IndexByte(remoteAddr, ':') >= 0 { // not a Unix socket's peer
		if h, p, err := net.SplitHostPort(remoteAddr); err == nil {
			host, port = h, p
		}
	}
	fields = append(fields, zap.String("remote_ip", host), zap.String("remote_port", port))
	if clientIP != "" {
		fields = append(fields, zap.String("client_ip", dwshttp.SenderText(clientIP)))
	}
	return fields
}

// KeyField is the log field of a notification's idempotency key:
// request_id for DWS (the requestId) and for a request no API was found
// for, key for Antom (Result.Key, e.g. paymentId:notifyType:resultStatus).
//
// A key that passed the rules is logged whole: it is header-safe and at
// most notification.MaxKeyLength (512) bytes, and its digest part is what
// tells two notifications of one subscription apart and what an operator
// copies into inspect --request-id. The key is still sender-controlled,
// so the field is bounded all the same, at MaxKeyLength: the bound every
// sender-controlled string reaching a log must have. What was read from a
// body the rules refused comes here already cut to dwshttp.MaxSenderText
// (64) bytes by dwshttp.RefusedRequestID.
func KeyField(api *notification.API, key string) zap.Field {
	key = dwshttp.CutText(key, notification.MaxKeyLength)
	if IsAntom(api) {
		return zap.String("key", key)
	}
	return zap.String("request_id", key)
}

// IsAntom reports whether api is of the Antom family.
func IsAntom(api *notification.API) bool { return api != nil && api.Family() == notification.Antom }

// KeyName names a notification's key in an answer or error: "requestId"
// for DWS; for Antom, "the notification key" and its fields, e.g. "the
// notification key (paymentId:notifyType:result.resultStatus)".
func KeyName(api *notification.API) string {
	if !IsAntom(api) {
		return "requestId"
	}
	return "the notification key (" + strings.Join(api.KeyFields(), ":") + ")"
}
