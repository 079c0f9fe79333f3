package schema

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// The byte-by-byte name rules accept exactly what their regexps (the
// patterns error messages show) accept.
func TestNameRulesMatchTheirPatterns(t *testing.T) {
	const alphabet = "aZ09_.-@+/ :é\x00"
	r := rand.New(rand.NewPCG(1, 2))
	for _, rule := range []nameRule{containerIDRule, hostRule, volumeRule, ifNameRule} {
		re := regexp.MustCompile(rule.pattern)
		for range 20000 {
			b := make([]byte, r.IntN(5))
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			if v := string(b); rule.match(v) != re.MatchString(v) {
				t.Fatalf("%s: rule says %v for %q, the regexp %v", rule.pattern, rule.match(v), v, re.MatchString(v))
			}
		}
	}
}
