package store

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// NewBackoff is uspace's one backoff, for every retry: the store's own
// (list-watch, registration, conflicts), the dataplane connections and the
// agents' loops. It waits from initial, growing 1.5 times per attempt to
// max, each wait randomised by up to half (so that agents that lost etcd
// or a dataplane together do not retry in step), and never gives up on its
// own: callers bound it by a context or a number of attempts.
func NewBackoff(initial, max time.Duration) *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(initial),
		backoff.WithMaxInterval(max),
		backoff.WithMaxElapsedTime(0),
	)
}
