// Package kubernetes holds deployments/kubernetes/ to the Kubernetes
// API and to the binaries: every manifest decodes strictly into the
// k8s.io/api types (an unknown or misspelt field is an error), the
// NetworkAttachmentDefinitions' configs load through the CNI plugin's own
// parser, and every flag, environment variable, path and reference the
// manifests set is one the binaries, the images and the other manifests
// really have.
//
// This file only holds the package documentation: the tests are
// manifests_test.go (package kubernetes_test). Nothing imports it.
package kubernetes
