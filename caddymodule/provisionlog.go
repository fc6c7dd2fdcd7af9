package caddymodule

import (
	"github.com/dwsnotify/dws_notify/notifylog"
)

// keyPrint names a configured key in logs (notifylog.KeyPrint).
type keyPrint = notifylog.KeyPrint

// logProvisioned writes the handler's one INFO line at provisioning: the
// plugin's build, the served APIs and paths, the keys by version and
// fingerprint, the store, and every effective setting (defaults applied;
// notifylog.ProvisionedFields). `caddy validate` writes it too.
func (h *Handler) logProvisioned() {
	var paths []notifylog.ServedPath
	if h.anyPath != nil {
		paths = append(paths, notifylog.ServedPath{API: h.anyPath.api.Name(), Path: "*"})
	}
	for _, r := range h.apis {
		paths = append(paths, notifylog.ServedPath{API: r.api.Name(), Path: r.path})
	}
	h.logger.Info("dws_notify provisioned", notifylog.ProvisionedFields(notifylog.Provisioned{
		Handler: &h.Handler, Settings: h.settings, Paths: paths, Keys: h.keyPrints, Merchant: h.merchant,
		Store:       notifylog.StoreInfo{Kind: h.store.kind, ID: h.store.id, Description: h.store.name},
		CallTimeout: h.store.CallTimeout(), Ack: ackMode(h.settings), InboxKeyIDs: h.inboxKeyIDs,
	})...)
}
