package volumes

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/uspace-io/uspace/agent/spdk"
	"github.com/uspace-io/uspace/schema"
)

// A volume's SPDK objects are either owned (created by this agent for the
// volume) or not (made by hand: adopted as they are, or a hand-made bdev
// named with -o bdev). Only owned objects are ever deleted or re-created,
// and only while the agent can recognise them as the ones it made: the
// bdev by its UUID, the controller by its socket. See volume/README.md for
// the rules as users see them.

// ownedBdevUUID is the UUID the agent gives the malloc bdev it creates for
// the volume at intent key: recognisable as uspace's, and as this volume's,
// by anyone who reads bdev_get_bdevs, whatever the bdev's name.
func ownedBdevUUID(key string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("uspace:"+key)).String()
}

// ownedBdev says whether b is the bdev the agent made for the volume at key.
func ownedBdev(key string, b *spdk.Bdev) bool {
	return strings.EqualFold(b.UUID, ownedBdevUUID(key))
}

// controllerID identifies a controller by the socket file SPDK made when it
// created it (SPDK removes the file with the controller and makes a new one
// for a controller made again under the same name): the file's device,
// inode and birth time (change time where the file system keeps no birth
// time). vhost_get_controllers reports nothing else that tells two
// controllers of one name on one bdev apart.
func controllerID(socket string) (string, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, socket, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO|unix.STATX_BTIME|unix.STATX_CTIME, &stx); err != nil {
		return "", fmt.Errorf("identify controller by its socket %s: %w", socket, err)
	}
	t := stx.Ctime
	if stx.Mask&unix.STATX_BTIME != 0 {
		t = stx.Btime
	}
	return fmt.Sprintf("%d:%d:%d:%d.%09d", stx.Dev_major, stx.Dev_minor, stx.Ino, t.Sec, t.Nsec), nil
}

// recognise says whether ctrl is the controller st records as owned. Once
// its creation was confirmed, st holds its identity (controllerID). Before
// that (a crash or a lost reply between the record and the answer, or a
// status of an older agent) it is taken as the agent's only if it is what
// the agent's create makes: a controller serving the volume's bdev (a SCSI
// one: or nothing yet, its target comes after).
func recognise(st *schema.VolumeStatus, ctrl *spdk.Controller) (bool, error) {
	if st.ControllerID != "" {
		id, err := controllerID(ctrl.Socket)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil && id == st.ControllerID, err
	}
	if blk := ctrl.BackendSpecific.Block; blk != nil {
		return blk.Bdev != "" && blk.Bdev == st.Bdev, nil
	}
	bdevs := scsiBdevs(ctrl)
	return len(bdevs) == 0 || len(bdevs) == 1 && bdevs[0] == st.Bdev, nil
}
