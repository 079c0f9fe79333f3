package vpp

import (
	"fmt"
	"strings"
)

// TagPrefix starts the tag of every object uspace creates in VPP.
const TagPrefix = "uspace:"

// MaxOwnerLen is the longest owner id that fits VPP's 64-byte tags
// (string[64], NUL-terminated) after TagPrefix.
const MaxOwnerLen = 63 - len(TagPrefix)

// OwnerTag returns the tag for objects owned by owner.
func OwnerTag(owner string) (string, error) {
	if owner == "" {
		return "", fmt.Errorf("%w: empty owner", ErrInvalid)
	}
	if len(owner) > MaxOwnerLen {
		return "", fmt.Errorf("%w: owner %q is %d bytes, at most %d fit in a VPP tag", ErrInvalid, owner, len(owner), MaxOwnerLen)
	}
	for _, r := range owner {
		if r < 0x21 || r > 0x7e {
			return "", fmt.Errorf("%w: owner %q must be printable ASCII without spaces", ErrInvalid, owner)
		}
	}
	return TagPrefix + owner, nil
}

// TagOwner returns the owner encoded in a uspace tag.
func TagOwner(tag string) (string, bool) {
	if !strings.HasPrefix(tag, TagPrefix) || len(tag) == len(TagPrefix) {
		return "", false
	}
	return tag[len(TagPrefix):], true
}

// ownership classifies an existing object's tag against the wanted one.
type ownership int

const (
	ownedByUs ownership = iota
	untagged
	foreign
)

func classify(tag, want string) ownership {
	switch tag {
	case want:
		return ownedByUs
	case "":
		return untagged
	}
	return foreign
}
