package kube

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// KubectlErr runs kubectl as the admin and returns its output.
func (n *Node) KubectlErr(args ...string) (string, error) {
	return n.kubectl("", args...)
}

func (n *Node) kubectl(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(n.bin, "kubectl"), append([]string{"--kubeconfig", n.Kubeconfig, "--cache-dir", filepath.Join(n.Dir, "kubectl-cache")}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Kubectl runs kubectl as the admin and fails the test when it fails.
func (n *Node) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.KubectlErr(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Apply is `kubectl apply -f -` of yaml.
func (n *Node) Apply(t testing.TB, yaml string) {
	t.Helper()
	if _, err := n.kubectl(yaml, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}
