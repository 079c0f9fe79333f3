package vpp_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/uspace-io/uspace/agent/vpp"
	"github.com/uspace-io/uspace/integration/vppsim"
)

// BenchmarkCreateMemif measures the cost per memif (create + tag) against
// the simulator: one CreateMemif per memif versus CreateMemifs pipelining
// all of them. Run with e.g. -bench CreateMemif -benchtime 10000x.
func BenchmarkCreateMemif(b *testing.B) {
	for _, mode := range []string{"sequential", "pipelined"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b, vppsim.Options{})
			ctx := context.Background()
			id, err := e.client.EnsureMemifSocket(ctx, e.path("b", "m.sock"))
			if err != nil {
				b.Fatal(err)
			}
			specs := make([]vpp.MemifSpec, b.N)
			for i := range specs {
				specs[i] = vpp.MemifSpec{Owner: "c/" + strconv.Itoa(i), SocketID: id, ID: uint32(i), Role: vpp.MemifMaster}
			}
			b.ResetTimer()
			if mode == "sequential" {
				for i := range specs {
					if _, err := e.client.CreateMemif(ctx, specs[i]); err != nil {
						b.Fatal(err)
					}
				}
			} else if _, err := e.client.CreateMemifs(ctx, specs); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if n := len(e.sim.Snapshot().Memifs); n != b.N {
				b.Fatalf("%d memifs, want %d", n, b.N)
			}
		})
	}
}
