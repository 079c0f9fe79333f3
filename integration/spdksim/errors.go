package spdksim

// Negative errno values SPDK puts into error replies, with strerror texts.
const (
	eNOMEM    = 12
	eIO       = 5
	eBUSY     = 16
	eEXIST    = 17
	eNODEV    = 19
	eINVAL    = 22
	eNOSPC    = 28
	eTIMEDOUT = 110
)

var strerror = map[int]string{
	eIO:       "Input/output error",
	eNOMEM:    "Cannot allocate memory",
	eBUSY:     "Device or resource busy",
	eEXIST:    "File exists",
	eNODEV:    "No such device",
	eINVAL:    "Invalid argument",
	eNOSPC:    "No space left on device",
	eTIMEDOUT: "Connection timed out",
}

// errno is a bdev-style error: the JSON-RPC code is the raw -errno.
func errno(e int) *rpcError { return &rpcError{-e, strerror[e]} }

// vhostErr is a vhost-style error: -32602 with strerror as message.
func vhostErr(e int) *rpcError { return &rpcError{codeInvalidParams, strerror[e]} }

var errDecode = &rpcError{codeInternalError, "spdk_json_decode_object failed"}
