package redisstore

import (
	"crypto/tls"
	"testing"
	"time"
)

// DataIdentity is the same for settings that reach the same records in
// another way (sentinels reordered, added or replaced; TLS; credentials;
// timeouts; cluster seed nodes reordered) and differs when the records
// differ (server, database, master, prefix).
func TestDataIdentity(t *testing.T) {
	sentinel := func(addrs ...string) *SentinelOptions {
		return &SentinelOptions{MasterName: "m", Addrs: addrs}
	}
	id := func(o Options) string {
		t.Helper()
		s, err := DataIdentity(o)
		if err != nil {
			t.Fatalf("DataIdentity(%+v): %v", o, err)
		}
		return s
	}
	base := map[string]Options{
		"url":      {URL: "redis://10.0.0.1:6379/2", Prefix: "p:"},
		"sentinel": {Sentinel: sentinel("s1:26379", "s2:26379", "s3:26379"), DB: 1, Prefix: "p:"},
		"cluster":  {Cluster: &ClusterOptions{Addrs: []string{"n1:7000", "n2:7000"}}, Prefix: "p:"},
	}
	same := []struct {
		name, base string
		o          Options
	}{
		{"url with a password and timeouts", "url", Options{URL: "redis://:secret@10.0.0.1:6379/2", Prefix: "p:", DialTimeout: time.Second, PoolSize: 3}},
		{"url over TLS", "url", Options{URL: "rediss://10.0.0.1:6379/2", Prefix: "p:", TLSConfig: &tls.Config{ServerName: "r"}}},
		{"sentinels reordered", "sentinel", Options{Sentinel: sentinel("s3:26379", "s1:26379", "s2:26379"), DB: 1, Prefix: "p:"}},
		{"a sentinel replaced and one added", "sentinel", Options{Sentinel: sentinel("s1:26379", "s4:26379", "s3:26379", "s5:26379"), DB: 1, Prefix: "p:"}},
		{"sentinel with TLS and a password", "sentinel", Options{Sentinel: sentinel("s1:26379"), DB: 1, Prefix: "p:", TLSConfig: &tls.Config{}, Password: "x"}},
		{"cluster nodes reordered", "cluster", Options{Cluster: &ClusterOptions{Addrs: []string{"n2:7000", "n1:7000"}}, Prefix: "p:"}},
	}
	for _, c := range same {
		if got, want := id(c.o), id(base[c.base]); got != want {
			t.Errorf("%s: %q, want %q (the same records)", c.name, got, want)
		}
	}
	other := []struct {
		name, base string
		o          Options
	}{
		{"url: another database", "url", Options{URL: "redis://10.0.0.1:6379/3", Prefix: "p:"}},
		{"url: another server", "url", Options{URL: "redis://10.0.0.2:6379/2", Prefix: "p:"}},
		{"url: another prefix", "url", Options{URL: "redis://10.0.0.1:6379/2", Prefix: "q:"}},
		{"url: the default prefix", "url", Options{URL: "redis://10.0.0.1:6379/2"}},
		{"sentinel: another master", "sentinel", Options{Sentinel: &SentinelOptions{MasterName: "n", Addrs: []string{"s1:26379"}}, DB: 1, Prefix: "p:"}},
		{"sentinel: another database", "sentinel", Options{Sentinel: sentinel("s1:26379"), DB: 2, Prefix: "p:"}},
		{"sentinel: another prefix", "sentinel", Options{Sentinel: sentinel("s1:26379", "s2:26379", "s3:26379"), DB: 1, Prefix: "q:"}},
		{"cluster: another node set", "cluster", Options{Cluster: &ClusterOptions{Addrs: []string{"n1:7000", "n3:7000"}}, Prefix: "p:"}},
		{"cluster: another prefix", "cluster", Options{Cluster: &ClusterOptions{Addrs: []string{"n1:7000", "n2:7000"}}, Prefix: "q:"}},
	}
	for _, c := range other {
		if got, was := id(c.o), id(base[c.base]); got == was {
			t.Errorf("%s: %q, the same as before", c.name, got)
		}
	}
	if got := id(Options{URL: "redis://:secret@10.0.0.1:6379/2", Password: "other"}); got != "10.0.0.1:6379 db 2 prefix "+DefaultPrefix {
		t.Errorf("url identity %q", got)
	}
	if _, err := DataIdentity(Options{}); err == nil {
		t.Error("no server: no error")
	}
}
