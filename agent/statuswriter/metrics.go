package statuswriter

import "github.com/prometheus/client_golang/prometheus"

// RegisterMetrics exports how many changes wait for etcd, whether w's
// writes are failing and how often they failed, so a status that cannot
// reach etcd shows in metrics and not only in the log.
func (w *Writer) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "uspace_status_writes_pending",
			Help: "Status changes made by reconciles that are not in etcd yet (status writes are batched).",
		}, func() float64 { return float64(w.Pending()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "uspace_status_write_failures_total", Help: "Status transactions that failed (each is retried unless etcd refused the identity).",
		}, func() float64 { return float64(w.Failures()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "uspace_status_writes_failing", Help: "1 while the last status transaction failed, 2 once etcd refused the identity for good, else 0.",
		}, func() float64 {
			select {
			case <-w.Failed():
				return 2
			default:
			}
			if w.Err() != nil {
				return 1
			}
			return 0
		}),
	)
}
