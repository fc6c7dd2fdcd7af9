//go:build !linux

package idempotency

// memLogFiles lists the directory every round where there is no inotify;
// the descriptor path is only taken on Linux anyway (see syncDurable).
type memLogFiles struct{ dir string }

func newMemLogFiles(dir string) *memLogFiles { return &memLogFiles{dir: dir} }

func (m *memLogFiles) sync() (int, error) { return syncMemtableLogs(m.dir, true) }

func (m *memLogFiles) close() {}
