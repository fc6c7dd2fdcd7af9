package notification

import (
	"embed"
	"slices"
)

// The samples: the example bodies of the two DWS notify API documents, byte
// for byte, and the example bodies Antom's documentation prints for each
// Antom notification (docs/antom.md names the page of each), except three.
// notifyVaulting, notifySubscription and notifySubscriptionPayment are NOT
// Antom's examples: their pages render the example by script and no copy
// of it could be read, so each was assembled from its page's parameter
// table (https://docs.antom.com/ac/ams/notify_vaulting,
// https://docs.antom.com/ac/ams/notify_sub,
// https://docs.antom.com/ac/ams/notify_subpayment) with made-up values
// (EXAMPLE in every ID, no real card or token). The files stay
// under testdata so the package's tests and the embedded copies are the
// same bytes; operator tooling (the `caddy dws-notify send` simulator)
// sends them from any directory.
var (
	//go:embed testdata/add.json
	addSample []byte
	//go:embed testdata/remove.json
	removeSample []byte
	//go:embed testdata/antom/*.json
	antomSamples embed.FS
)

// Sample returns a fresh copy of the sample body of the named notify API
// of any family exactly as its document shows it, and whether there is
// one. Every API of the catalog has one, and it passes the API's rules.
func Sample(api string) ([]byte, bool) {
	switch api {
	case "addPaymentMethod":
		return slices.Clone(addSample), true
	case "removePaymentMethod":
		return slices.Clone(removeSample), true
	}
	if a, ok := Lookup(api); ok && a.family == Antom {
		// ReadFile returns a new slice: embed.FS keeps the file as a string.
		if b, err := antomSamples.ReadFile("testdata/antom/" + api + ".json"); err == nil {
			return b, true
		}
	}
	return nil, false
}
