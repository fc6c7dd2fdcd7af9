package config

import "strings"

// Closest returns the known name fewest edits away from name, if that is
// at most one edit for names of up to four letters and two for longer
// ones; "" if none is that close. The Caddyfile parser offers it as "did
// you mean" for an unknown subdirective or option. An edit inserts, deletes or replaces a
// letter, or swaps two adjacent ones; case does not count.
func Closest(name string, known []string) string {
	limit := 2
	if len(name) <= 4 {
		limit = 1
	}
	best, bestDist := "", limit+1
	for _, k := range known {
		if d := editDistance(strings.ToLower(name), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b
// (Levenshtein with adjacent transpositions), over bytes: the names
// compared are ASCII.
func editDistance(a, b string) int {
	// rows prev2, prev and cur of the distance table.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
