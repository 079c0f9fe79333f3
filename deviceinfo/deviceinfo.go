// Package deviceinfo is the Network Plumbing Working Group's device-info
// (github.com/k8snetworkplumbingwg/device-info-spec, version 1.1.0) for
// uspace's interfaces: what an application in the container needs to open
// its end of a memif or vhost-user interface (role, mode, socket), built
// from the container-side intent, and the file that carries it. The CNI
// plugin writes one where the runtime's CNIDeviceInfoFile capability asks
// (Multus copies it into the pod's network-status annotation); the
// container agent keeps one per interface in a directory the pod shares
// with its application.
package deviceinfo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/uspace-io/uspace/schema"
)

// Version is the device-info spec version written.
const Version = "1.1.0"

// Device types of the spec that uspace makes.
const (
	TypeMemif     = "memif"
	TypeVhostUser = "vhost-user"
)

// Info is one device's information, field names as the spec's.
type Info struct {
	Type      string     `json:"type"`
	Version   string     `json:"version"`
	Memif     *Memif     `json:"memif,omitempty"`
	VhostUser *VhostUser `json:"vhost-user,omitempty"`
}

// Memif is a memif device: the role and mode the application's end takes,
// and its socket ("@name" for an abstract socket in the container's
// network namespace).
type Memif struct {
	Role string `json:"role"`
	Path string `json:"path"`
	Mode string `json:"mode"`
}

// VhostUser is a vhost-user device: the mode of the application's end and
// its socket file.
type VhostUser struct {
	Mode string `json:"mode"`
	Path string `json:"path"`
}

// For is the device-info of a container-side interface; nil for a type the
// spec has no device for.
func For(ci *schema.ContainerInterface) *Info {
	switch {
	case ci.Memif != nil:
		mode := string(ci.Memif.Mode)
		if ci.Memif.Mode == schema.MemifInjectPunt {
			mode = "punt" // the spec's name for it
		}
		return &Info{Type: TypeMemif, Version: Version,
			Memif: &Memif{Role: string(ci.Memif.Role), Path: ci.Memif.SocketPath, Mode: mode}}
	case ci.Vhost != nil:
		return &Info{Type: TypeVhostUser, Version: Version,
			VhostUser: &VhostUser{Mode: string(ci.Vhost.Mode), Path: ci.Vhost.SocketPath}}
	}
	return nil
}

// Write puts info at path, whole or not at all (a temporary file renamed
// over it), readable by all: an application reading it never sees half a
// file, and a repeated write replaces the file.
func Write(path string, info *Info) error {
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("encode device-info for %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create device-info directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write device-info %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o444)); err != nil {
		return fmt.Errorf("write device-info %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write device-info %s: %w", path, err)
	}
	return nil
}

// Remove deletes the file at path; one already gone is not an error.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove device-info %s: %w", path, err)
	}
	return nil
}

// Sweep removes from dir the device-info files of interfaces keep does
// not name (<interface>.json, the interface named without the suffix) and
// the temporary files of writes cut short, so a directory kept by an
// earlier run names no interface that is gone. Only files Write made are
// touched: another file, even one named *.json, is left alone. A missing
// dir holds nothing to sweep.
func Sweep(dir string, keep func(ifname string) bool) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read device-info directory %s: %w", dir, err)
	}
	var errs []error
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(dir, name)
		ifname, isInfo := strings.CutSuffix(name, ".json")
		switch {
		case !e.Type().IsRegular():
		case strings.HasPrefix(name, ".") && strings.Contains(name, ".json.") && written(path):
			errs = append(errs, Remove(path))
		case isInfo && !keep(ifname) && written(path):
			errs = append(errs, Remove(path))
		}
	}
	return errors.Join(errs...)
}

// written says the file at path holds a device-info Write made: one of
// the types uspace makes, at the version it writes. A temporary file cut
// short before its content holds nothing and counts as made too.
func written(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	if len(b) == 0 {
		return strings.HasPrefix(filepath.Base(path), ".")
	}
	var info Info
	return json.Unmarshal(b, &info) == nil && info.Version == Version &&
		(info.Type == TypeMemif && info.Memif != nil || info.Type == TypeVhostUser && info.VhostUser != nil)
}
