// Package config gives every command-line flag an environment-variable fallback
// named after the service: --grpc-addr of authsvc is AUTHSVC_GRPC_ADDR.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// EnvName is the environment variable that backs a flag.
func EnvName(prefix, flagName string) string {
	return strings.ToUpper(prefix + "_" + strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then fills every flag the command line left unset
// from its environment variable (environ is KEY=VALUE pairs, as os.Environ
// gives). A flag beats its variable; a variable beats the default. An invalid
// value names the variable it came from, and a variable with the service's
// prefix that names no flag (a typo, a setting from another version) is an
// error rather than silently ignored.
// header, if not empty, is printed by --help above the flags (the
// subcommands, say).
func Parse(fs *flag.FlagSet, prefix string, args []string, environ []string, header string) error {
	fs.Usage = func() {
		if header != "" {
			fmt.Fprintln(fs.Output(), header)
			fmt.Fprintln(fs.Output())
		}
		fmt.Fprintf(fs.Output(), "Flags of %s (every flag also reads the environment variable shown):\n", fs.Name())
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" {
				def = fmt.Sprintf(" (default %q)", f.DefValue)
			}
			fmt.Fprintf(fs.Output(), "  --%s (%s)\n    \t%s%s\n", f.Name, EnvName(prefix, f.Name), f.Usage, def)
		})
	}
	// The flag package prints the whole usage after any mistake, which
	// scrolls the one line that matters away: print it only for --help.
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return err
	}
	if err != nil {
		return fmt.Errorf("%s (%s --help lists every setting)", describeFlagError(fs, err), fs.Name())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { known[EnvName(prefix, f.Name)] = true })
	envPrefix := strings.ToUpper(prefix) + "_"
	for k := range env {
		if strings.HasPrefix(k, envPrefix) && !known[k] {
			return fmt.Errorf("environment variable %s matches no setting of %s (see --help)", k, fs.Name())
		}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		name := EnvName(prefix, f.Name)
		if v, ok := env[name]; ok {
			if setErr := fs.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("environment variable %s=%q: %s", name, v, explainValueError(f, setErr))
			}
		}
	})
	return err
}

// describeFlagError rewrites the flag package's message in the spelling the
// documentation uses (--name, not -name) and says what value was wanted.
func describeFlagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	// "invalid value "abc" for flag -token-ttl: parse error", or for a
	// boolean "invalid boolean value "abc" for -tls: parse error"
	for _, shape := range [][2]string{{"invalid value ", " for flag -"}, {"invalid boolean value ", " for -"}} {
		rest, ok := strings.CutPrefix(msg, shape[0])
		if !ok {
			continue
		}
		if value, flagAndCause, ok := strings.Cut(rest, shape[1]); ok {
			name, cause, _ := strings.Cut(flagAndCause, ": ")
			if f := fs.Lookup(name); f != nil {
				return fmt.Sprintf("--%s %s: %s", name, value, explainValueError(f, errors.New(cause)))
			}
		}
	}
	for _, prefix := range []string{"flag provided but not defined: ", "flag needs an argument: ", "bad flag syntax: "} {
		if name, ok := strings.CutPrefix(msg, prefix); ok {
			return prefix + "--" + strings.TrimLeft(name, "-")
		}
	}
	return msg
}

// explainValueError says what form a flag's value takes when the flag
// package's own reason ("parse error") does not.
func explainValueError(f *flag.Flag, err error) string {
	getter, ok := f.Value.(flag.Getter)
	if !ok {
		return err.Error()
	}
	if strings.Contains(err.Error(), "out of range") {
		return "out of range"
	}
	switch getter.Get().(type) {
	case time.Duration:
		return "want a duration such as 90s, 15m or 1h30m"
	case bool:
		return "want true or false"
	case int, int64, uint, uint64:
		return "want a whole number"
	case float64:
		return "want a number"
	}
	return err.Error()
}

// Environ turns a map into KEY=VALUE pairs (for tests).
func Environ(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// Reference writes fs's flags as a Markdown table: flag, environment variable,
// default and meaning. docs/configuration.md is made of these, so the
// documentation is generated from the code and a test keeps it current.
func Reference(w io.Writer, fs *flag.FlagSet, prefix string) {
	fmt.Fprintln(w, "| flag | environment variable | default | meaning |")
	fmt.Fprintln(w, "|---|---|---|---|")
	fs.VisitAll(func(f *flag.Flag) {
		def := "`" + f.DefValue + "`"
		if f.DefValue == "" {
			def = ""
		}
		usage := strings.ReplaceAll(f.Usage, "|", "\\|")
		fmt.Fprintf(w, "| `--%s` | `%s` | %s | %s |\n", f.Name, EnvName(prefix, f.Name), def, usage)
	})
}

// CheckListenAddrs wants the gRPC and HTTP listen addresses to be host:port
// (port 0 to 65535; 0 picks a free one) and distinct, so that check-config
// catches what would otherwise fail only when the service binds.
func CheckListenAddrs(grpcAddr, httpAddr string) error {
	for _, a := range []struct{ flag, addr string }{{"--grpc-addr", grpcAddr}, {"--http-addr", httpAddr}} {
		_, port, err := net.SplitHostPort(a.addr)
		if err != nil {
			return fmt.Errorf("%s %q: want host:port, such as localhost:8080 or :8080", a.flag, a.addr)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("%s %q: the port must be a number from 0 to 65535", a.flag, a.addr)
		}
	}
	if grpcAddr == httpAddr && !strings.HasSuffix(grpcAddr, ":0") {
		return fmt.Errorf("--grpc-addr and --http-addr are both %q; they need an address each", grpcAddr)
	}
	return nil
}
