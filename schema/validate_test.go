package schema

import (
	"math/rand/v2"
	"regexp"
	"strings"
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

func TestValidateMemifSocket(t *testing.T) {
	for _, tc := range []struct {
		socket, netns, root, want string // want "": valid
	}{
		{"/run/shared/a.sock", "", "", ""},
		{"/run/shared/a.sock", "", "/other", "must lie inside"},
		{"/run/shared/a.sock", "/var/run/netns/x", "", "only for an abstract socket"},
		{"@uspace-0123456789abcdef", "", "", ""},
		{"@uspace-0123456789abcdef", "/var/run/netns/cni-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "", ""},
		{"@uspace-0123456789abcdef", "/proc/4242/ns/net", "", ""},
		{"@", "", "", "must not be empty"},
		{"@a,netns_name=/x", "", "", "must match"},
		{"@a/b", "", "", "must match"},
		{"@uspace-x", "relative/ns", "", "absolute"},
		{"@uspace-x", "/var/run/netns/a,b", "", "','"},
		{"@uspace-x", "/var/run/netns/" + strings.Repeat("n", 80), "", "VPP keeps 107"},
	} {
		err := ValidateMemifSocket("socketPath", "netns", tc.socket, tc.netns, tc.root)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q in %q: got %v, want %q", tc.socket, tc.netns, err, tc.want)
		}
	}
}
