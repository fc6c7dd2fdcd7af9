package config

import (
	"fmt"
	"slices"
	"time"

	"github.com/dwsnotify/dws_notify/notification"
)

// Effective are a Handler's settings with the defaults applied and the
// strings parsed, for a Handler that passed Check.
type Effective struct {
	Retention      time.Duration
	Tolerance      time.Duration // 0: the freshness check is off
	ForwardTimeout time.Duration
	BodyTimeout    time.Duration
	Lease          time.Duration // LeaseFor(ForwardTimeout)
	MaxBodySize    int64
	// MessageField is result_message_field when it is set, for every
	// answer; "" when it is not: each answer then spells the message as
	// its API's family does (MessageFieldFor).
	MessageField notification.MessageField
	// noRouteField is the message field of an answer that has no API (a
	// path no api serves): the family's when every configured API is of
	// one family, else resultMsg.
	noRouteField notification.MessageField
	// BusinessReject marks the backend statuses that are business
	// refusals (business_reject_status, or its default).
	BusinessReject [600]bool
	// Ack are the acknowledgement settings (zero: on_delivery).
	Ack AckEffective
}

// Effective returns the effective settings of h, which must have passed
// Check.
func (h *Handler) Effective() Effective {
	e := Effective{
		Retention:      h.retention(),
		ForwardTimeout: orDefault(h.ForwardTimeout, DefaultForwardTimeout),
		BodyTimeout:    orDefault(h.BodyTimeout, DefaultBodyTimeout),
		MaxBodySize:    h.MaxBodySize,
	}
	e.Tolerance, _ = ParseTolerance(h.RequestTimeTolerance)
	e.Lease = LeaseFor(e.ForwardTimeout)
	if e.MaxBodySize == 0 {
		e.MaxBodySize = DefaultMaxBodySize
	}
	e.MessageField, _ = ParseMessageField(h.ResultMessageField)
	var families []notification.Family
	for _, a := range h.API {
		if api, ok := notification.Lookup(a.Name); ok && !slices.Contains(families, api.Family()) {
			families = append(families, api.Family())
		}
	}
	e.noRouteField = notification.ResultMsg
	if len(families) == 1 {
		e.noRouteField = families[0].MessageField()
	}
	e.Ack = h.Acknowledge.effective()
	statuses := h.BusinessRejectStatus
	if statuses == nil {
		statuses = DefaultBusinessRejectStatus
	}
	for _, s := range statuses {
		e.BusinessReject[s] = true
	}
	return e
}

func (h *Handler) retention() time.Duration {
	return orDefault(h.Retention, DefaultRetention)
}

// orDefault is d, or dflt when d is not set.
func orDefault(d Duration, dflt time.Duration) time.Duration {
	if d == 0 {
		return dflt
	}
	return time.Duration(d)
}

// LeaseFor is how long a claim blocks duplicates before it is considered
// abandoned (the gateway died mid-forward). It outlasts the longest forward
// and stays well under DWS's first 2-minute retry interval for the default
// forward_timeout.
func LeaseFor(forward time.Duration) time.Duration {
	return 2*forward + 5*time.Second
}

// ParseTolerance reads request_time_tolerance: a positive duration, "off"
// (0: no freshness check), or "" (the default).
func ParseTolerance(s string) (time.Duration, error) {
	switch s {
	case "":
		return DefaultRequestTimeTolerance, nil
	case "off":
		return 0, nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a duration nor off", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive (use off to disable the check)", s)
	}
	return d, nil
}

// MessageFieldFor returns the message field of an answer about api: the
// result_message_field setting when it is set, else the spelling of the
// api's family (resultMsg for DWS, resultMessage for Antom). api is nil
// for an answer to a path no api serves.
func (e Effective) MessageFieldFor(api *notification.API) notification.MessageField {
	switch {
	case e.MessageField != "":
		return e.MessageField
	case api != nil:
		return api.Family().MessageField()
	case e.noRouteField != "":
		return e.noRouteField
	}
	return notification.ResultMsg
}

// ParseMessageField reads result_message_field; "" (not set) is returned
// as it is: each answer then uses its API family's spelling.
func ParseMessageField(s string) (notification.MessageField, error) {
	switch s {
	case "":
		return "", nil
	case string(notification.ResultMsg):
		return notification.ResultMsg, nil
	case string(notification.ResultMessage):
		return notification.ResultMessage, nil
	case string(notification.BothMessageFields):
		return notification.BothMessageFields, nil
	}
	return "", fmt.Errorf("result_message_field must be %s, %s or %s, not %q", notification.ResultMsg, notification.ResultMessage, notification.BothMessageFields, s)
}
