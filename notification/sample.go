package notification

import (
	_ "embed" // the seed samples are embedded
	"slices"
)

// The seed samples: the example bodies of the two DWS notify API documents,
// byte for byte. The files stay under testdata so the package's tests and
// the embedded copies are the same bytes; operator tooling (the `caddy
// dws-notify send` simulator) sends them from any directory.
var (
	//go:embed testdata/add.json
	addSample []byte
	//go:embed testdata/remove.json
	removeSample []byte
)

// Sample returns a fresh copy of the seed sample body of the named notify
// API (addPaymentMethod or removePaymentMethod) exactly as the API document
// shows it, and whether there is one. Both samples pass their API's rules.
func Sample(api string) ([]byte, bool) {
	switch api {
	case "addPaymentMethod":
		return slices.Clone(addSample), true
	case "removePaymentMethod":
		return slices.Clone(removeSample), true
	}
	return nil, false
}
