package main

import (
	"slices"
	"testing"
)

func TestNormalizeArgs(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-path", "/a"}, []string{"--path", "/a"}}, // the seed's flag
		{[]string{"-path=/a/"}, []string{"--path=/a/"}},     // Go flag's = form
		{[]string{"-p", "/a"}, []string{"-p", "/a"}},        // the seed README's
		{[]string{"-p/a"}, []string{"-p/a"}},                // shorthand with attached value
		{[]string{"-version"}, []string{"--version"}},       // the seed's -version
		{[]string{"--name", "x", "-host", "h"}, []string{"--name", "x", "--host", "h"}},
		{[]string{"-etcd-endpoints=a:1"}, []string{"--etcd-endpoints=a:1"}},
		{[]string{"-nosuch"}, []string{"-nosuch"}}, // left for pflag to reject
		{[]string{"--", "-path"}, []string{"--", "-path"}},
	} {
		var o options
		fs := flags(&o)
		if got := NormalizeArgs(fs, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("NormalizeArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, args := range [][]string{{"-path", "/x/"}, {"-p", "/x/"}, {"--path=/x/"}, {"-path=/x/"}} {
		var o options
		fs := flags(&o)
		if err := fs.Parse(NormalizeArgs(fs, args)); err != nil || o.root != "/x/" {
			t.Errorf("%q: root %q, err %v", args, o.root, err)
		}
	}
}
