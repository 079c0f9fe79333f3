// blockcheck is what a pod without Kata makes of a uspace volume: for each
// path it prints what the pod sees there and what it can do with it. A
// block device node: its major:minor and what opening it gives. A unix
// socket: a vhost-user handshake (VHOST_USER_GET_FEATURES), as a userspace
// vhost-user-blk driver in the pod would start one.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

func main() {
	for _, p := range os.Args[1:] {
		fmt.Printf("%s: %s\n", p, check(p))
	}
}

func check(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fmt.Sprintf("stat: %v", err)
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		major, minor := (st.Rdev>>8)&0xfff, (st.Rdev&0xff)|((st.Rdev>>12)&0xfff00)
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			return fmt.Sprintf("block device %d:%d, open: %v", major, minor, err)
		}
		f.Close()
		return fmt.Sprintf("block device %d:%d, open: ok", major, minor)
	case syscall.S_IFSOCK:
		features, err := vhostFeatures(path)
		if err != nil {
			return fmt.Sprintf("socket, vhost-user: %v", err)
		}
		return fmt.Sprintf("socket, vhost-user features %#x", features)
	}
	return fmt.Sprintf("mode %o", st.Mode)
}

// vhostFeatures sends VHOST_USER_GET_FEATURES (request 1, flags: version
// 1, no payload) and reads the u64 the back-end answers.
func vhostFeatures(path string) (uint64, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := make([]byte, 12)
	binary.LittleEndian.PutUint32(req[0:], 1)
	binary.LittleEndian.PutUint32(req[4:], 1)
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	reply := make([]byte, 20)
	if _, err := io.ReadFull(c, reply); err != nil {
		return 0, fmt.Errorf("read the reply: %w", err)
	}
	if r := binary.LittleEndian.Uint32(reply[0:]); r != 1 {
		return 0, fmt.Errorf("reply to request %d", r)
	}
	return binary.LittleEndian.Uint64(reply[12:]), nil
}
