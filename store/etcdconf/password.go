package etcdconf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ResolvePassword returns the password to log in with ("" without a
// user): the one given, or the password file's content. Both given, a user
// without a password or a password without a user are errors.
func (c Config) ResolvePassword() (string, error) {
	password := c.Password
	switch {
	case c.Password != "" && c.PasswordFile != "":
		return "", fmt.Errorf("etcd password given both in %s and as file %s: set only one", EnvPassword, c.PasswordFile)
	case c.PasswordFile != "":
		var err error
		if password, err = readPasswordFile(c.PasswordFile); err != nil {
			return "", err
		}
	}
	switch {
	case c.Username != "" && password == "":
		return "", fmt.Errorf("etcd user %q given without a password (set a password file or %s)", c.Username, EnvPassword)
	case c.Username == "" && password != "":
		return "", errors.New("etcd password given without a user name")
	}
	return password, nil
}

// readPasswordFile refuses files others can read: a leaked etcd password
// gives write access to a host's intents. Errors name the file and its mode,
// never its content.
func readPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening etcd password file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checked file is the read one.
	info, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("checking etcd password file %s: %w", path, err)
	}
	if mode := info.Mode().Perm(); mode&0o077 != 0 {
		return "", fmt.Errorf("etcd password file %s has mode %04o: it must not be accessible by group or others (chmod 600 %s)", path, mode, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, passwordFileMax+1))
	if err != nil {
		return "", fmt.Errorf("reading etcd password file %s: %w", path, err)
	}
	if len(data) > passwordFileMax {
		return "", fmt.Errorf("etcd password file %s is larger than %d bytes: not a password file", path, passwordFileMax)
	}
	password := strings.TrimRight(string(data), "\r\n")
	if password == "" {
		return "", fmt.Errorf("etcd password file %s is empty", path)
	}
	return password, nil
}
