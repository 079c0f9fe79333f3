// Package kube brings up a real single-node Kubernetes on this machine and
// installs uspace on it from deployments/kubernetes/, for the Kubernetes
// tier (this folder's tests) and the benchmark's Kubernetes row.
//
// The node (node.go, daemons.go): its own etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kubelet and a containerd of its
// own (root, state and socket in its directory), Multus v4.2.2 as the only
// CNI config delegating the cluster network to bridge + host-local; the
// Kubernetes v1.34.4 binaries, Multus and crictl come from the prebuilt
// tarballs of USPACE_KUBERNETES_DIR (default ../shared/kubernetes),
// unpacked once into USPACE_BIN_DIR/kubernetes. Its address sits on a
// bridge it makes (uskube0, 10.211.0.1/24), so no test traffic leaves the
// machine; its PKI is made in the process (pki.go). Images come from no
// registry: the pause image from testdata/pause, uspace's from
// deployments/images/build.sh, copied with `docker save | ctr import`.
//
// uspace on it (uspace.go): its etcd with TLS, client certificates and
// roles as deployments/etcd/ says, the real VPP 25.02 behind a counting
// binary-API proxy at /run/vpp/api.sock (integration/realdp), SPDK 24.09
// at /var/tmp/spdk.sock on demand, the host agents' Secret (the pods need
// none), then the manifests applied with only what their comments leave to
// the user changed (the etcd endpoints; the VPP pod's name and network,
// and on vhost-user its shared directory mount).
//
// The machine: the node uses fixed paths and ports (/run/vpp, /opt/cni/bin,
// /etc/uspace, /var/run/netns, 10.211.0.1:2379/6443/10250...), so one node at a time runs
// per machine (a lock file in the temporary directory). Everything it
// changes outside its directory is recorded first (host.go: sysctls
// kubelet sets, host paths the hostPath volumes create, links) and undone
// at the end, also when the test fails; a run that died (a killed test
// binary leaves shims, pods and mounts behind) is undone by the next.
//
// Need / Missing skip, in one line, where a node cannot run: not root, no
// tarballs, no containerd, runc, zstd, gcc, openssl or Docker daemon, no
// real VPP.
//
// Tests: kube_test.go and the files beside it (package kube_test), one
// node per test binary run, each flow a subtest.
package kube
