package helpcheck

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Flag is one flag of a --help listing.
type Flag struct {
	Name    string // without dashes
	Short   string // one letter, or ""
	Type    string // "string", "duration", ... ; "" for a boolean
	Default string // as printed, quotes and brackets removed
}

// Help is a parsed --help.
type Help struct {
	Text  string
	Flags map[string]Flag // by long name and by short name
}

var (
	flagLine   = regexp.MustCompile(`^\s+(?:-([a-zA-Z]), )?--([a-z0-9][a-z0-9-]*)(?: ([a-zA-Z]+))?\s{2,}(.*)$`)
	defaultRe  = regexp.MustCompile(`\(default (.*)\)\s*$`)
	envNameRe  = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)
	podEnvVars = []string{"POD_NAMESPACE", "POD_NAME"}
)

// Parse reads a pflag/cobra --help listing.
func Parse(text string) Help {
	h := Help{Text: text, Flags: map[string]Flag{}}
	for _, line := range strings.Split(text, "\n") {
		m := flagLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f := Flag{Short: m[1], Name: m[2], Type: m[3]}
		if d := defaultRe.FindStringSubmatch(m[4]); d != nil {
			v := d[1]
			// "(env X) (default "y")": the last parenthesis is the default.
			if i := strings.LastIndex(v, "(default "); i >= 0 {
				v = v[i+len("(default "):]
			}
			v = strings.TrimSuffix(v, ")")
			f.Default = strings.Trim(strings.Trim(v, `"`), "[]")
		}
		h.Flags[f.Name] = f
		if f.Short != "" {
			h.Flags[f.Short] = f
		}
	}
	return h
}

// Has reports whether the binary has the flag (long or short name).
func (h Help) Has(name string) bool {
	_, ok := h.Flags[strings.TrimLeft(name, "-")]
	return ok
}

// Default is a flag's default as printed.
func (h Help) Default(name string) string { return h.Flags[strings.TrimLeft(name, "-")].Default }

// Env lists the environment variables the help text names.
func (h Help) Env() map[string]bool {
	out := map[string]bool{}
	for _, name := range envNameRe.FindAllString(h.Text, -1) {
		out[name] = true
	}
	for _, name := range podEnvVars {
		if strings.Contains(h.Text, name) {
			out[name] = true
		}
	}
	return out
}

// Run runs `bin args... --help` in an environment without any USPACE_*
// variable of the test's own, plus env ("K=V"), and parses the output.
func Run(t testing.TB, bin string, env []string, args ...string) Help {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string{}, args...), "--help")...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USPACE_") && !strings.HasPrefix(kv, "POD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s --help: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return Parse(string(out))
}

// SplitFlag splits "--name=value" / "-n" / "--name" into its name and
// value; ok is false for an argument that is not a flag.
func SplitFlag(arg string) (name, value string, hasValue, ok bool) {
	if !strings.HasPrefix(arg, "-") || arg == "-" || arg == "--" {
		return "", "", false, false
	}
	name = strings.TrimLeft(arg, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		return name[:i], name[i+1:], true, true
	}
	return name, "", false, true
}

// Flags reads a command line's flags into name -> value, taking the next
// argument as the value of a flag that is not boolean in h.
func Flags(t testing.TB, h Help, args []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		name, value, hasValue, ok := SplitFlag(args[i])
		if !ok {
			t.Errorf("argument %q is not a flag", args[i])
			continue
		}
		f, known := h.Flags[name]
		if !known {
			t.Errorf("flag %s: the binary has no such flag", args[i])
			continue
		}
		if !hasValue && f.Type != "" {
			if i+1 >= len(args) {
				t.Errorf("flag %s has no value", args[i])
				continue
			}
			i++
			value = args[i]
		}
		out[f.Name] = value
	}
	return out
}

// Root is the module's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", "..", ".."))
}

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// Programs under deployments/images/, by binary name.
var programs = map[string]string{
	"uspace-cni-installer": "./deployments/images/cni-installer",
	"uspace-start":         "./deployments/images/uspace-start",
}

// Program builds (once per test process) one of the programs that live
// under deployments/images/, statically, and returns its path.
func Program(t testing.TB, name string) string {
	t.Helper()
	pkg, ok := programs[name]
	if !ok {
		t.Fatalf("no program %s under deployments/images", name)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "uspace-deploy-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	p := filepath.Join(buildDir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-o", p, pkg)
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[name] = p
	return p
}

// IsStatic reports whether an ELF executable needs no dynamic loader (a
// FROM-scratch image has none).
func IsStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// Static returns a static build of path, the binary of package pkg: path
// itself when it is static, else a fresh CGO_ENABLED=0 build (a bin/
// built outside make may be dynamic).
func Static(t testing.TB, path, pkg string) string {
	t.Helper()
	ok, err := IsStatic(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if ok {
		return path
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	key := "static:" + pkg
	if p, ok := built[key]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "uspace-deploy-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	dir := filepath.Join(buildDir, "static")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filepath.Base(path))
	cmd := exec.Command("go", "build", "-trimpath", "-o", p, pkg)
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[key] = p
	return p
}

// Cleanup removes what Program built; call it from TestMain.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// ExpandK8s expands Kubernetes' $(VAR) references in an env value with
// vars; it reports the first name that is not defined.
func ExpandK8s(value string, vars map[string]string) (string, error) {
	var missing string
	out := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(value, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := vars[name]
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("$(%s) is not defined before it is used", missing)
	}
	return out, nil
}
