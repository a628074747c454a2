package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/pgstore"
	"github.com/mlgate/mlgate/authsvc/internal/signing"
	"github.com/mlgate/mlgate/authsvc/internal/sqlitestore"
	"github.com/mlgate/mlgate/authsvc/internal/sqlstore"
	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/authsvc/internal/throttle"
)

// openStore opens the configured store with its schema current (migrating it
// unless --auto-migrate=false, in which case it only checks the version).
func openStore(ctx context.Context, cfg settings, log *slog.Logger, migrate bool) (*sqlstore.Store, error) {
	kind, path, err := cfg.store()
	if err != nil {
		return nil, err
	}
	if kind == sqliteStore {
		return sqlitestore.Open(ctx, path) // opening migrates
	}
	st, err := pgstore.Open(cfg.db)
	if err != nil {
		return nil, err
	}
	if err := waitForDatabase(ctx, st, cfg.dbWait, log); err != nil {
		st.Close()
		return nil, err
	}
	prepare := st.CheckSchema
	if migrate {
		prepare = st.Migrate
	}
	if err := prepare(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return st, nil
}

// waitForDatabase waits up to --db-wait for the database, so replicas may
// start before it.
func waitForDatabase(ctx context.Context, st *sqlstore.Store, wait time.Duration, log *slog.Logger) error {
	deadline := time.Now().Add(wait)
	for {
		err := st.Ping(ctx)
		if err == nil {
			return nil
		}
		if pgstore.IsPermanent(err) {
			return fmt.Errorf("postgres store: %w", err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("postgres store: database unreachable after %s: %w", wait, err)
		}
		log.Warn("waiting for the database", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// ensureSigningKey gives a new store its first key: the key file of an
// earlier SQLite installation if there is one (so its tokens stay valid),
// else a fresh key. Replicas starting together agree on one.
func ensureSigningKey(ctx context.Context, st *sqlstore.Store, cfg settings) error {
	now := time.Now().UTC()
	key, err := signing.NewKey(now, now)
	if err != nil {
		return err
	}
	if kind, _, _ := cfg.store(); kind == sqliteStore {
		legacy, err := signing.LoadKeyFile(cfg.signingKeyFile)
		switch {
		case err == nil:
			key = store.SigningKey{Kid: legacy.Kid, Private: legacy.Private, CreatedAt: now, ActiveAt: now}
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	return st.EnsureSigningKey(ctx, key)
}

// describeStore names the store the settings point at, so that every
// operator command says which one it touched.
func describeStore(cfg settings) string {
	kind, path, err := cfg.store()
	switch {
	case err != nil:
		return "an invalid --database-url"
	case kind == postgresStore:
		return pgstore.Describe(cfg.databaseURL)
	}
	return "SQLite file " + absPath(path)
}

// absPath makes a relative path absolute, so a message says where a file
// is whatever directory the reader is in.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// operatorCommand runs a subcommand that works on the store directly.
func operatorCommand(ctx context.Context, name string, cfg settings, log *slog.Logger) error {
	where := describeStore(cfg)
	// An operator command run from the wrong directory, or with a mistyped
	// --data-dir, must not create an empty store and report success on it.
	if kind, path, _ := cfg.store(); kind == sqliteStore && name != "migrate" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no store at %s: authsvc has never run with these settings; run this command from the directory authsvc runs in, or give it the same --data-dir or --database-url", absPath(path))
		}
	}
	st, err := openStore(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer st.Close()
	switch name {
	case "migrate":
		fmt.Fprintf(os.Stdout, "schema of %s is up to date\n", where)
		return nil
	case "rotate-key":
		now := time.Now().UTC()
		key, err := signing.NewKey(now, now.Add(cfg.activationDelay))
		if err != nil {
			return err
		}
		if err := st.AddSigningKey(ctx, key); err != nil {
			return err
		}
		accounts, err := newAccounts(st, cfg, log, nil, nil, nil)
		if err != nil {
			return err
		}
		accounts.RecordKeyRotation(ctx, key.Kid)
		fmt.Fprintf(os.Stdout, "new signing key %s stored in %s: running authsvc replicas publish it in the JWK Set within --key-reload (%s) and sign with it from %s\n",
			key.Kid, where, cfg.keyReload, key.ActiveAt.Format(time.RFC3339))
		return nil
	case "unlock":
		limiter, err := throttle.New(st, cfg.loginLimit, time.Now)
		if err != nil {
			return err
		}
		accounts, err := newAccounts(st, cfg, log, nil, limiter, nil)
		if err != nil {
			return err
		}
		canonical, cleared, err := accounts.Unlock(ctx, cfg.grantEmail)
		if err != nil {
			return fmt.Errorf("%w (in %s)", err, where)
		}
		if !cleared {
			fmt.Fprintf(os.Stdout, "no failed logins of %s are counted in %s: it was not locked\n", canonical, where)
			return nil
		}
		fmt.Fprintf(os.Stdout, "failed logins of %s cleared in %s: it may log in again\n", canonical, where)
		return nil
	case "grant-role":
		accounts, err := newAccounts(st, cfg, log, nil, nil, nil)
		if err != nil {
			return err
		}
		u, added, err := accounts.GrantRole(ctx, cfg.grantEmail, cfg.grantRole)
		if err != nil {
			return fmt.Errorf("%w (in %s)", err, where)
		}
		if !added {
			fmt.Fprintf(os.Stdout, "%s (%s) already has role %s: roles %v (%s)\n", u.Email, u.ID, cfg.grantRole, u.Roles, where)
			return nil
		}
		fmt.Fprintf(os.Stdout, "%s (%s) now has roles %v (%s): AdminService sees them at once; its tokens carry them (and their scopes) from its next login or refresh\n", u.Email, u.ID, u.Roles, where)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q", name)
}
