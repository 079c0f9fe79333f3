package volumes

import (
	"context"
	"errors"

	"github.com/uspace-io/uspace/agent/spdk"
)

// transient reports a volume error the agent retries on its own without a
// change of intent (schema.VolumeStatus.Retrying): SPDK is unreachable or
// too slow to answer. What SPDK refuses is terminal.
func transient(err error) bool {
	return errors.Is(err, spdk.ErrConnection) || errors.Is(err, context.DeadlineExceeded)
}
