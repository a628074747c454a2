// Package config gives every command-line flag an environment-variable fallback
// named after the service: --grpc-addr of authsvc is AUTHSVC_GRPC_ADDR.
package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// ErrUsage marks a command-line error that has already been printed with the
// usage text; the caller should exit without repeating it.
var ErrUsage = errors.New("usage error")

// EnvName is the environment variable that backs a flag.
func EnvName(prefix, flagName string) string {
	return strings.ToUpper(prefix + "_" + strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then fills every flag the command line left unset
// from its environment variable. A flag beats its variable; a variable beats
// the default. An invalid value names the variable it came from.
func Parse(fs *flag.FlagSet, prefix string, args []string, lookupEnv func(string) (string, bool)) error {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of %s (every flag also reads the environment variable shown):\n", fs.Name())
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" {
				def = fmt.Sprintf(" (default %q)", f.DefValue)
			}
			fmt.Fprintf(fs.Output(), "  --%s (%s)\n    \t%s%s\n", f.Name, EnvName(prefix, f.Name), f.Usage, def)
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		// The flag package has already printed the error and the usage.
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		name := EnvName(prefix, f.Name)
		if v, ok := lookupEnv(name); ok {
			if setErr := fs.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("environment variable %s=%q: %w", name, v, setErr)
			}
		}
	})
	return err
}
