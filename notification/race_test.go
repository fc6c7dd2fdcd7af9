//go:build race

package notification

func init() { raceEnabled = true }
