// Package bench is uspace's benchmark (`make bench`): every figure is
// measured against a floor taken in the same run, on the same machine and
// the same etcd, and reported as a ratio to it.
//
// Modes: USPACE_BENCH=full (or 1) runs the full version (200 samples,
// 10,000 intents, 10 hosts on a 3-member cluster, then the rows on the real
// VPP and SPDK, each phase skipped with one line when its dataplane is
// missing, and the Kubernetes row on integration/kube's node, skipped with
// one line without it; about 6 minutes on 2 cores) and writes
// bin/bench-results.{json,md}. BENCH_QUICK=1, or neither variable (a plain
// `go test ./...`), runs the quick version (15 samples, 200 intents, no
// cluster, no real dataplanes unless USPACE_BENCH_REAL=1; under a minute
// on an idle machine) and writes bin/bench-results-quick.{json,md}. Both print the markdown table. The test
// only fails on broken plumbing — a row missing, a ratio that is not a
// finite positive number — never on speed: whether the targets hold
// is reported in the table.
//
// USPACE_BENCH_ROWS, a regular expression, runs only the steps that make
// a matching row (with the up-front floors they are compared with), e.g.
// USPACE_BENCH=full USPACE_BENCH_ROWS='^real_resync_adopt' for the real-VPP
// adopt alone; USPACE_BENCH_SAMPLES and USPACE_BENCH_INTENTS resize a run.
// The table is followed by the rows that carry a target, each saying
// whether it held.
//
// Nothing imports it; its code is all in the _test.go files here
// (TestBench), which may import everything under integration/ and the
// product packages.
package bench
