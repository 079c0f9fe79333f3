package spdksim

import (
	"encoding/json"
	"fmt"
	"sort"
)

// handlers maps each JSON-RPC method to its simulation: the version
// methods here, bdev_* in bdev.go, vhost_* in vhost.go; errors.go holds
// the error replies, rpc.go the connections.
type handler func(s *Sim, rc *rpcConn, params json.RawMessage) (any, *rpcError)

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"spdk_get_version":                    (*Sim).spdkGetVersion,
		"rpc_get_methods":                     (*Sim).rpcGetMethods,
		"bdev_malloc_create":                  (*Sim).bdevMallocCreate,
		"bdev_malloc_delete":                  (*Sim).bdevMallocDelete,
		"bdev_get_bdevs":                      (*Sim).bdevGetBdevs,
		"vhost_create_blk_controller":         (*Sim).vhostCreateBlkController,
		"vhost_create_scsi_controller":        (*Sim).vhostCreateScsiController,
		"vhost_scsi_controller_add_target":    (*Sim).vhostScsiControllerAddTarget,
		"vhost_scsi_controller_remove_target": (*Sim).vhostScsiControllerRemoveTarget,
		"vhost_delete_controller":             (*Sim).vhostDeleteController,
		"vhost_get_controllers":               (*Sim).vhostGetControllers,
	}
}

// ---- spdk_get_version / rpc_get_methods ----

type versionFields struct {
	Major  int    `json:"major"`
	Minor  int    `json:"minor"`
	Patch  int    `json:"patch"`
	Suffix string `json:"suffix"`
	Commit string `json:"commit,omitempty"`
}

type versionResult struct {
	Version string        `json:"version"`
	Fields  versionFields `json:"fields"`
}

func (s *Sim) spdkGetVersion(_ *rpcConn, params json.RawMessage) (any, *rpcError) {
	if params != nil {
		return nil, &rpcError{codeInvalidParams, "spdk_get_version method requires no parameters"}
	}
	version := fmt.Sprintf("SPDK v%d.%02d", VersionMajor, VersionMinor)
	if s.opts.Commit != "" {
		version += " git sha1 " + s.opts.Commit
	}
	return versionResult{
		Version: version,
		Fields:  versionFields{VersionMajor, VersionMinor, VersionPatch, "", s.opts.Commit},
	}, nil
}

func (s *Sim) rpcGetMethods(_ *rpcConn, params json.RawMessage) (any, *rpcError) {
	if params != nil {
		if _, ok := decodeObject(params, []field{{"current", kBool, true}, {"include_aliases", kBool, true}}, false); !ok {
			return nil, &rpcError{codeInvalidParams, "Invalid parameters"}
		}
	}
	names := make([]string, 0, len(handlers))
	for n := range handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
