package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/account"
	"github.com/mlgate/mlgate/authsvc/internal/pgstore"
	"github.com/mlgate/mlgate/authsvc/internal/signing"
	"github.com/mlgate/mlgate/authsvc/internal/sqlitestore"
)

// userStore is what main needs of a store: the domain's interface plus the
// lifecycle.
type userStore interface {
	account.Store
	Ping(ctx context.Context) error
	Close() error
}

// openStore opens the configured store with its schema current, and returns
// the key to sign with: from the key file beside a SQLite store, from the
// database when replicas share PostgreSQL.
func openStore(ctx context.Context, cfg settings, log *slog.Logger) (userStore, ed25519.PrivateKey, error) {
	kind, path, err := cfg.store()
	if err != nil {
		return nil, nil, err
	}
	if kind == sqliteStore {
		store, err := sqlitestore.Open(ctx, path)
		if err != nil {
			return nil, nil, err
		}
		key, err := signing.LoadOrCreateKey(cfg.signingKeyFile)
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		return store, key, nil
	}

	store, err := openPostgres(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	prepare := store.CheckSchema
	if cfg.autoMigrate {
		prepare = store.Migrate
	}
	if err := prepare(ctx); err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("postgres store: %w", err)
	}
	key, err := store.SigningKey(ctx)
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("postgres store: signing key: %w", err)
	}
	return store, key, nil
}

// openPostgres opens the pool and waits up to --db-wait for the database, so
// replicas may start before it.
func openPostgres(ctx context.Context, cfg settings, log *slog.Logger) (*pgstore.Store, error) {
	store, err := pgstore.Open(cfg.db)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(cfg.dbWait)
	for {
		err := store.Ping(ctx)
		if err == nil {
			return store, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			store.Close()
			return nil, fmt.Errorf("postgres store: database unreachable after %s: %w", cfg.dbWait, err)
		}
		log.Warn("waiting for the database", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// migrate is the `authsvc migrate` subcommand: bring the schema up to date
// and exit, for operators who run migrations apart from the replicas.
func migrate(ctx context.Context, cfg settings, log *slog.Logger) error {
	kind, path, err := cfg.store()
	if err != nil {
		return err
	}
	if kind == sqliteStore {
		store, err := sqlitestore.Open(ctx, path) // opening migrates
		if err != nil {
			return err
		}
		log.Info("schema is up to date", "store", "sqlite")
		return store.Close()
	}
	store, err := openPostgres(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("postgres store: %w", err)
	}
	log.Info("schema is up to date", "store", "postgres")
	return nil
}
