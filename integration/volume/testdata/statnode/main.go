package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	for _, p := range os.Args[1:] {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			fmt.Printf("%s: %v\n", p, err)
			os.Exit(1)
		}
		kind := "other"
		if st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
			kind = "block"
		}
		major := (st.Rdev >> 8) & 0xfff
		minor := (st.Rdev & 0xff) | ((st.Rdev >> 12) & 0xfff00)
		fmt.Printf("%s: %s %d:%d\n", p, kind, major, minor)
	}
}
