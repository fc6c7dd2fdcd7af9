package caddymodule

import (
	"context"
	"path/filepath"
	"testing"
)

// The store pool: one store per storage, shared by handlers and kept
// across reloads.

func TestStorePoolSharesOneDatabasePerDirectory(t *testing.T) {
	dir := t.TempDir()
	canonical, _ := filepath.EvalSymlinks(dir)
	a, b := baseHandler(t), baseHandler(t)
	a.Storage = dir
	b.Storage = dir + "/." // another spelling of the same directory
	if err := a.Provision(newContext(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.Provision(newContext(t)); err != nil {
		t.Fatal(err)
	}
	if refs, _ := storePool.References(canonical); refs != 2 {
		t.Fatalf("references = %d, want 2 (one open database shared by both)", refs)
	}
	if a.store != b.store {
		t.Fatal("two handlers on one directory got different stores")
	}
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := a.Cleanup(); err != nil { // a second Cleanup must not release b's reference
		t.Fatal(err)
	}
	if refs, _ := storePool.References(canonical); refs != 1 {
		t.Fatalf("references after one cleanup = %d, want 1", refs)
	}
	if _, _, err := b.store.Get(context.Background(), keyOf("addPaymentMethod", "x")); err != nil {
		t.Fatalf("store closed while still referenced: %v", err)
	}
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := storePool.References(canonical); ok {
		t.Fatal("database still pooled after the last handler was cleaned up")
	}
	if _, _, err := b.store.Get(context.Background(), keyOf("addPaymentMethod", "x")); err == nil {
		t.Fatal("database still open after the last reference was released")
	}
}
