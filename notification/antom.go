package notification

import "slices"

// The Antom (AMS) notifications. Each spec cites the reference page its
// rules come from; docs/antom.md gives the key choices and their sources.
//
// What the rules check, beyond the string typing every body gets: the
// fields the reference marks REQUIRED (where one edition of a page marks a
// field required and another does not, the field is required only under
// Options.Strict), the maximum lengths it gives, and the documented values
// of the enums that can only ever hold them (result.resultStatus). Enums
// that Antom extends over time (notifyType, refundStatus, the dispute
// types) are checked only under Options.Strict: refusing a value added after
// this catalog was written would lose the notification after Antom's last
// resend. Members the reference does not list are allowed.
//
// A notification's own result (result.resultStatus F for a failed
// payment) is content for the merchant's backend, not the gateway's
// verdict: it is validated and forwarded like any other value.

// antomResult is the result object a notification carries about the
// operation it reports: notifyPayment's "result" and its child parameters,
// https://docs.antom.com/ac/ams/paymentrn_online, the same on
// notifyCapture and notifyRefund. resultStatus holds S, F or U, the values
// of the Result object every Antom API shares.
func antomResult() []field {
	return []field{
		{path: "result", object: true, need: always},
		{path: "result.resultCode", need: always, min: 1, max: 64},
		{path: "result.resultStatus", need: always, min: 1, max: 1, enum: []string{"S", "F", "U"}, headerSafe: true},
		{path: "result.resultMessage", max: 256},
	}
}

// amount is an Amount object at path: currency and value both required,
// String(3) and String(16), https://docs.antom.com/ac/ref/cc.
func amount(path string, need presence) []field {
	return []field{
		{path: path, object: true, need: need},
		{path: path + ".currency", need: always, min: 1, max: 3},
		{path: path + ".value", need: always, min: 1, max: 16},
	}
}

// notifyType is the notification type field: required, the values the
// reference gives checked under Options.Strict. The pages of the
// notifications here give it no maximum length; the one that does gives 32
// (notifyDirectPayment, https://docs.antom.com/ac/aba/notifydirect).
func notifyType(values ...string) field {
	return field{path: "notifyType", need: always, min: 1, max: 32, headerSafe: true, enum: values, strictEnum: true}
}

// The members Antom sends as JSON numbers or booleans although the
// reference types every field as a String: an official SDK (Go or Java) declares them
// so, and a notification refused for one would be answered F and lost
// after Antom's last resend. Each cites its source; every other field
// keeps the string rule (an amount's value sent as a number stays
// PARAM_ILLEGAL).
var (
	// alipay/global-open-sdk-go, com/alipay/api/model/Quote.go:
	// QuotePrice float32 (settlementQuote on notifyPayment, a
	// subscription period's payment and notifyRefund).
	settlementQuotePrice = field{path: "settlementQuote.quotePrice", also: alsoNumber}
	// The same file: Guaranteed bool.
	settlementQuoteGuaranteed = field{path: "settlementQuote.guaranteed", also: alsoBoolean}
	// alipay/global-open-sdk-go, com/alipay/api/model/RetryInfo.go:
	// AvailableRetries int, in the retryInfo of AlipayPayResultNotify
	// (com/alipay/api/request/notify/AlipayPayResultNotify.go), which
	// notifyPayment and a subscription period's payment both are.
	retryInfoAvailableRetries = field{path: "retryInfo.availableRetries", also: alsoNumber}
	// alipay/global-open-sdk-go, com/alipay/api/model/CreditPayPlan.go:
	// InstallmentNum int32 and FeePercentage int32, the creditPayPlan of
	// the PaymentResultInfo (model/PaymentResultInfo.go) in
	// AlipayPayResultNotify's paymentResultInfo: an installment payment's
	// notifyPayment or period payment (the Java SDK's CreditPayPlan has
	// Integer for both).
	creditPayPlanInstallmentNum = field{path: "paymentResultInfo.creditPayPlan.installmentNum", also: alsoNumber}
	creditPayPlanFeePercentage  = field{path: "paymentResultInfo.creditPayPlan.feePercentage", also: alsoNumber}
	// alipay/global-open-sdk-java,
	// src/main/java/com/alipay/global/api/request/ams/notify/AlipayPayResultNotify.java
	// (commit f228c1579a3b5d546025ae4dbf1caaf61865763e): a paymentQuote
	// of type Quote beside settlementQuote, whose quotePrice is a
	// BigDecimal and guaranteed a Boolean
	// (src/main/java/com/alipay/global/api/model/ams/Quote.java, commit
	// 1bede3933b54fea8ab1e5f652235b15a4cf24914). notifyPayment and a
	// subscription period's payment (AlipaySubscriptionPayNotify extends
	// AlipayPayResultNotify) both carry it.
	paymentQuotePrice      = field{path: "paymentQuote.quotePrice", also: alsoNumber}
	paymentQuoteGuaranteed = field{path: "paymentQuote.guaranteed", also: alsoBoolean}
	// alipay/global-open-sdk-java,
	// src/main/java/com/alipay/global/api/request/ams/notify/AlipaySubscriptionNotify.java
	// (commit f228c1579a3b5d546025ae4dbf1caaf61865763e): Boolean
	// allowAccumulate, on notifySubscription.
	subscriptionAllowAccumulate = field{path: "allowAccumulate", also: alsoBoolean}
	// A vaulted card's is3DSAuthentication: bool in
	// alipay/global-open-sdk-go, com/alipay/api/model/CardPaymentMethodDetail.go
	// (commit d8a333ccd6bef273eddacae4ac1f16e289496ec2), Boolean in
	// alipay/global-open-sdk-java,
	// src/main/java/com/alipay/global/api/model/ams/CardPaymentMethodDetail.java
	// (commit 30400e36dd2ae5a0adbca58bba5cc21d69cc4b5a), which the Java
	// SDK's VaultingCard extends: the card of notifyVaulting's
	// paymentMethodDetail (model/ams/VaultingPaymentMethodDetail.java).
	vaultingCardIs3DSAuthentication = field{path: "paymentMethodDetail.card.is3DSAuthentication", also: alsoBoolean}
)

// payResultScalars are the members of the official SDK's
// AlipayPayResultNotify that may be JSON numbers or booleans (with the
// settlementQuote object they sit in): notifyPayment and a subscription
// period's payment are both that notification.
func payResultScalars() []field {
	return []field{
		{path: "settlementQuote", object: true},
		settlementQuotePrice, settlementQuoteGuaranteed,
		retryInfoAvailableRetries,
		creditPayPlanInstallmentNum, creditPayPlanFeePercentage,
		paymentQuotePrice, paymentQuoteGuaranteed,
	}
}

// id is a required identifier of String(64), the length every Antom ID has.
func id(path string) field { return field{path: path, need: always, min: 1, max: 64} }

var antomSpecs = []spec{
	{
		// https://docs.antom.com/ac/ams/paymentrn_online: PAYMENT_RESULT
		// and PAYMENT_PENDING; the Chinese edition of the page
		// (?lang=zh-cn) adds UPDATE_AMOUNT_RESULT, the answer to an
		// updateAmount call, and lists customsDeclarationAmount,
		// grossSettlementAmount, settlementQuote and acquirerReferenceNo.
		// paymentCreateTime is REQUIRED on this page and optional on the APO
		// edition (https://docs.antom.com/ac/apo/paymentrn): strict only.
		// One payment can have up to ten amount adjustments
		// (https://docs.antom.com/ac/ams/updateAmount), each answered by
		// an UPDATE_AMOUNT_RESULT with the same paymentId and status and
		// nothing that numbers them: that type's key adds a content
		// digest. So does a failure's (result.resultStatus F): the
		// official SDK's AlipayPayResultNotify, which this notification
		// is, carries subscriptionOrderId and retryInfo
		// (alipay/global-open-sdk-go,
		// com/alipay/api/request/notify/AlipayPayResultNotify.go), so a
		// failed subscription charge retried under one paymentId is
		// notified as F once per failed try, each with another retryInfo.
		// An S or U key stays paymentId:notifyType:status (a PENDING and
		// a RESULT of one payment are forwarded once each, and resends
		// of either replayed).
		// This spec follows the online edition; the in-store (offline)
		// edition, https://docs.antom.com/ac/ams/paymentrn, which adds
		// notifyType OFFLINE_PAYMENT_CODE and does not mark result
		// REQUIRED, is not in the catalog (docs/antom.md).
		name:         "notifyPayment",
		family:       Antom,
		key:          []string{"paymentId", "notifyType", "result.resultStatus"},
		keyContent:   true,
		keyContentIf: []equals{{"notifyType", "UPDATE_AMOUNT_RESULT"}, {"result.resultStatus", "F"}},
		fields: slices.Concat(
			[]field{notifyType("PAYMENT_RESULT", "PAYMENT_PENDING", "UPDATE_AMOUNT_RESULT")},
			antomResult(),
			[]field{
				id("paymentRequestId"),
				{path: "paymentId", need: always, min: 1, max: 64, headerSafe: true},
			},
			amount("paymentAmount", always),
			[]field{
				{path: "paymentCreateTime", need: strictOnly, min: 1},
				{path: "paymentTime"},
			},
			amount("customsDeclarationAmount", optional),
			amount("grossSettlementAmount", optional),
			[]field{{path: "acquirerReferenceNo", max: 64}},
			payResultScalars(),
		),
	},
	{
		// https://docs.antom.com/ac/ams/notify_capture
		name:   "notifyCapture",
		family: Antom,
		key:    []string{"captureId", "result.resultStatus"},
		fields: slices.Concat(
			antomResult(),
			[]field{
				notifyType("CAPTURE_RESULT"),
				id("captureRequestId"),
				id("paymentId"),
				{path: "captureId", need: always, min: 1, max: 64, headerSafe: true},
			},
			amount("captureAmount", always),
			[]field{
				{path: "captureTime"},
				{path: "acquirerReferenceNo", max: 64},
			},
		),
	},
	{
		// https://docs.antom.com/ac/ams/notify_refund; arn and metadata
		// (String(2048)) from its Chinese edition,
		// https://docs.antom.com/ac/ams_zh-cn/notify_reund. The page gives
		// refundStatus no maximum length; 32 bounds the key.
		name:   "notifyRefund",
		family: Antom,
		key:    []string{"refundId", "refundStatus"},
		fields: slices.Concat(
			[]field{notifyType("REFUND_RESULT")},
			antomResult(),
			[]field{
				{path: "refundStatus", need: always, min: 1, max: 32, headerSafe: true, enum: []string{"SUCCESS", "FAIL"}, strictEnum: true},
				id("refundRequestId"),
				{path: "refundId", need: always, min: 1, max: 64, headerSafe: true},
			},
			amount("refundAmount", always),
			[]field{{path: "refundTime"}},
			amount("grossSettlementAmount", optional),
			[]field{
				{path: "settlementQuote", object: true},
				settlementQuotePrice, settlementQuoteGuaranteed,
				{path: "arn"},
				{path: "metadata", max: 2048},
			},
		),
	},
	{
		// https://global.alipay.com/docs/ac/ams/notify_dispute (the
		// 2024-04-24 edition): no notifyType and no result, as its sample
		// shows. The enum values are the page's and those the official
		// SDK adds (DISPUTE_ACCEPTED, RDR_RESOLVED; VALIDATE_SUCCESS,
		// VALIDATE_FAIL): alipay/global-open-sdk-go,
		// com/alipay/api/model/DisputeNotificationType.go.
		//
		// One dispute can get two different notifications of one type:
		// a retrieval request and its escalation to a chargeback both
		// arrive as DISPUTE_CREATED
		// (https://docs.antom.com/ac/dispute/dispute_resolution), a
		// compliance request judged VALIDATE_FAIL then VALIDATE_SUCCESS
		// is two DISPUTE_JUDGED, and defense can be supplied more than
		// once. Nothing in the body numbers them, so the key adds a
		// content digest: a resend is one notification, a change of
		// content another.
		name:       "notifyDispute",
		family:     Antom,
		key:        []string{"disputeId", "disputeNotificationType"},
		keyContent: true,
		fields: slices.Concat(
			[]field{
				id("paymentRequestId"),
				{path: "disputeId", need: always, min: 1, max: 64, headerSafe: true},
				id("paymentId"),
				{path: "disputeTime"},
			},
			amount("disputeAmount", optional),
			[]field{
				{path: "disputeNotificationType", need: always, min: 1, max: 30, headerSafe: true, strictEnum: true, enum: []string{
					"DISPUTE_CREATED", "DISPUTE_JUDGED", "DISPUTE_CANCELLED", "DEFENSE_SUPPLIED", "DEFENSE_DUE_ALERT",
					"DISPUTE_ACCEPTED", "RDR_RESOLVED",
				}},
				{path: "disputeReasonMsg", max: 256},
				{path: "disputeJudgedTime"},
			},
			amount("disputeJudgedAmount", optional),
			[]field{
				{path: "disputeJudgedResult", max: 30, strictEnum: true, enum: []string{
					"ACCEPT_BY_CUSTOMER", "ACCEPT_BY_MERCHANT", "VALIDATE_SUCCESS", "VALIDATE_FAIL",
				}},
				{path: "defenseDueTime"},
				{path: "disputeReasonCode", max: 64},
				{path: "disputeSource", max: 64},
				// A JSON boolean: Antom's dispute guide,
				// https://docs.antom.com/ac/cashierpay/dispute ("Receive
				// Notification of Dispute"), shows "defendable": true, and
				// the official SDK has Defendable bool
				// (alipay/global-open-sdk-go,
				// com/alipay/api/request/notify/AlipayDisputeNotify.go).
				{path: "defendable", also: alsoBoolean},
			},
		),
	},
	{
		// https://global.alipay.com/docs/ac/ams/nrs: every field optional,
		// no notifyType and no result. One registration is notified more
		// than once (its status, and each wallet's status in
		// pspRegistrationResultList, change: PENDING, COMPLETED, REJECTED,
		// https://global.alipay.com/docs/ac/ams/irs), and nothing in the
		// body names one notification, so the key is the
		// registrationRequestId and a digest of the content.
		name:       "notifyRegistrationStatus",
		family:     Antom,
		key:        []string{"registrationRequestId"},
		keyContent: true,
		fields: []field{
			{path: "referenceMerchantId", max: 64},
			{path: "registrationRequestId", min: 1, max: 64, headerSafe: true},
			{path: "referenceStoreId", max: 32},
			{path: "registrationResult", object: true},
			{path: "registrationResult.registrationStatus"},
		},
	},
	{
		// https://docs.antom.com/ac/ams/notify_vaulting (and its .md
		// edition): result, vaultingRequestId (String(64)) and
		// paymentMethodDetail REQUIRED, nothing else listed. The APO
		// edition, https://docs.antom.com/ac/apo/notify_vaulting.md, adds
		// vaultingStatus (SUCCESS, FAIL, PROCESSING; String(10), sent when
		// result.resultStatus is S); its Chinese edition,
		// https://docs.antom.com/ac/apo_zh-cn/notifyVaulting, marks
		// vaultingCreateTime REQUIRED and lists acquirerInfo, which the AMS
		// page does not list: vaultingCreateTime is required only under
		// Options.Strict. The APO edition marks result.resultMessage
		// REQUIRED, the AMS one does not say: it stays optional. A failed
		// vaulting (resultStatus F, vaultingStatus FAIL or absent) is
		// content, and the vaulted method's details are what a failure
		// lacks (inquireVaulting returns paymentMethodDetail only when
		// vaultingStatus is SUCCESS), so paymentMethodDetail, REQUIRED on
		// every edition, is required only under Options.Strict and only
		// when result.resultStatus is S: refusing a failure for it would
		// lose the notification after Antom's last resend.
		name:   "notifyVaulting",
		family: Antom,
		key:    []string{"vaultingRequestId", "result.resultStatus", "vaultingStatus"},
		fields: slices.Concat(
			antomResult(),
			[]field{
				{path: "vaultingRequestId", need: always, min: 1, max: 64, headerSafe: true},
				{path: "vaultingStatus", min: 1, max: 10, headerSafe: true, enum: []string{"SUCCESS", "FAIL", "PROCESSING"}, strictEnum: true},
				{path: "paymentMethodDetail", object: true, need: strictOnly, when: &equals{"result.resultStatus", "S"}},
				vaultingCardIs3DSAuthentication,
				// When the vault was created: a failed vaulting has none.
				{path: "vaultingCreateTime", need: strictOnly, when: &equals{"result.resultStatus", "S"}, min: 1},
				// acquirerInfo is left to the typing of unknown members (a
				// string or an object): the Chinese APO edition describes
				// an object, the official SDK has AcquirerInfo string
				// (alipay/global-open-sdk-go,
				// com/alipay/api/request/notify/AlipayVaultingNotify.go).
			},
		),
	},
	{
		// https://docs.antom.com/ac/ams/notify_sub (the same on
		// https://global.alipay.com/docs/ac/ams/notify_sub and the Chinese
		// edition, https://docs.antom.com/ac/ams_zh-cn/notify_sub):
		// subscriptionRequestId, subscriptionStatus (ACTIVE, TERMINATED;
		// String(32)) and subscriptionNotificationType (CREATE, CHANGE,
		// CANCEL, TERMINATE, and UPDATE on the Chinese edition; String(32))
		// REQUIRED on every edition read here. subscriptionId is optional on the One
		// API edition, https://docs.antom.com/ac/oneapi/notify_sub ("not
		// returned when the user fails to create the subscription plan"),
		// and that edition could not be read past the notification type
		// here, so subscriptionId and the fields the others mark REQUIRED
		// after it (subscriptionStartTime, subscriptionEndTime, periodRule)
		// are required only under Options.Strict, and then only when
		// subscriptionStatus is ACTIVE (a subscription that became active
		// was created and has Antom's ID and its period; a failed creation
		// is not active and may have neither). A subscription is
		// notified once per event, and CHANGE and UPDATE can happen more
		// than once to one subscription with nothing in the body to number
		// them: the key adds a content digest. TERMINATED is content.
		name:       "notifySubscription",
		family:     Antom,
		key:        []string{"subscriptionRequestId", "subscriptionNotificationType"},
		keyContent: true,
		fields: []field{
			{path: "subscriptionRequestId", need: always, min: 1, max: 64, headerSafe: true},
			{path: "subscriptionId", need: strictOnly, when: &equals{"subscriptionStatus", "ACTIVE"}, min: 1, max: 64},
			// CANCELLED is the official SDK's (alipay/global-open-sdk-go,
			// com/alipay/api/model/SubscriptionStatus.go, commit
			// 3cf1d915ebede6a87251f60a94eeb1007d74bc91), not the pages'.
			{path: "subscriptionStatus", need: always, min: 1, max: 32, enum: []string{"ACTIVE", "TERMINATED", "CANCELLED"}, strictEnum: true},
			{path: "subscriptionNotificationType", need: always, min: 1, max: 32, headerSafe: true, strictEnum: true, enum: []string{
				"CREATE", "CHANGE", "CANCEL", "TERMINATE", "UPDATE",
			}},
			{path: "subscriptionStartTime", need: strictOnly, when: &equals{"subscriptionStatus", "ACTIVE"}, min: 1},
			{path: "subscriptionEndTime", need: strictOnly, when: &equals{"subscriptionStatus", "ACTIVE"}, min: 1},
			{path: "periodRule", object: true, need: strictOnly, when: &equals{"subscriptionStatus", "ACTIVE"}},
			// A JSON number in the official SDK: PeriodCount int32
			// (alipay/global-open-sdk-go, com/alipay/api/model/PeriodRule.go).
			{path: "periodRule.periodCount", also: alsoNumber},
			subscriptionAllowAccumulate,
		},
	},
	{
		// The payment result of one subscription period: a notifyPayment
		// with no notifyType and no paymentRequestId, so a name and a path
		// of its own. https://docs.antom.com/ac/ams/notify_subpayment (also
		// https://global.alipay.com/docs/ac/ams/notify_subpayment and
		// https://docs.antom.com/ac/oneapi/notify_subpayment): result,
		// paymentId (String(64)), paymentAmount and paymentCreateTime
		// REQUIRED on every edition read here. The Chinese edition,
		// https://docs.antom.com/ac/ams_zh-cn/notify_subpayment, also marks
		// subscriptionRequestId, subscriptionId (String(64) each),
		// periodStartTime, periodEndTime and phaseNo (String(64)) REQUIRED;
		// the English editions could not be read past paymentTime here, so
		// those are required only under Options.Strict. One period's
		// payment reaches one final state (S or F, a failed period payment
		// being content): the key is notifyCapture's, paymentId and
		// result.resultStatus. A failed period payment may be retried
		// under the same paymentId, each failure notified with its
		// changed retryInfo (retryInfo in the official SDK's
		// AlipayPayResultNotify, com/alipay/api/model/RetryInfo.go:
		// availableRetries and the next retry): an F key adds a content
		// digest, so each failed try is its own notification and a
		// resend of one is one; an S key stays paymentId:S.
		name:         "notifySubscriptionPayment",
		family:       Antom,
		key:          []string{"paymentId", "result.resultStatus"},
		keyContent:   true,
		keyContentIf: []equals{{"result.resultStatus", "F"}},
		fields: slices.Concat(
			antomResult(),
			[]field{{path: "paymentId", need: always, min: 1, max: 64, headerSafe: true}},
			amount("paymentAmount", always),
			[]field{
				{path: "paymentCreateTime", need: always, min: 1},
				{path: "paymentTime"},
				{path: "subscriptionRequestId", need: strictOnly, min: 1, max: 64},
				{path: "subscriptionId", need: strictOnly, min: 1, max: 64},
				{path: "periodStartTime", need: strictOnly, min: 1},
				{path: "periodEndTime", need: strictOnly, min: 1},
				// A string per the Chinese edition, a JSON number in the
				// official SDK: PhaseNo int (alipay/global-open-sdk-go,
				// com/alipay/api/request/notify/AlipaySubscriptionPayNotify.go).
				// The string rules hold when it is a string.
				{path: "phaseNo", need: strictOnly, min: 1, max: 64, also: alsoNumber},
			},
			// The same AlipayPayResultNotify as notifyPayment: a period
			// charged in another currency, or by installments, sends the
			// same numbers.
			payResultScalars(),
		),
	},
}
