package main

import (
	"io"
	"strings"
	"testing"
)

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cpumask", "zz"}, "--cpumask"},
		{[]string{"--cpumask", "0"}, "--cpumask"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"extra"}, "unknown command"},
		{[]string{"-r", "/nonexistent-dir/x/spdk.sock", "-S", "/"}, "listen"},
	} {
		cmd := newCommand()
		cmd.SetArgs(tc.args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want error containing %q", tc.args, err, tc.want)
		}
	}
}
