package config

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"retention", "request_time_tolerance", "api", "store", "storage"}
	for name, want := range map[string]string{
		"retension": "retention", "RETENTION": "retention", "retnetion": "retention",
		"apu": "api", "stor": "store", "storag": "storage",
		"xyz": "", "ret": "", "frobnicate": "", "": "",
	} {
		if got := Closest(name, known); got != want {
			t.Errorf("Closest(%q) = %q, want %q", name, got, want)
		}
	}
}
