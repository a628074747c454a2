package sqlstore

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"database/sql"
	"fmt"

	"github.com/mlgate/mlgate/authsvc/internal/store"
)

// SigningKeys returns every stored signing key, oldest activation first.
func (s *Store) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kid, private_key, created_at, active_at FROM signing_keys ORDER BY active_at, kid`)
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var (
			k               store.SigningKey
			der             []byte
			created, active int64
		)
		if err := rows.Scan(&k.Kid, &der, &created, &active); err != nil {
			return nil, s.classify(ctx, err)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("stored signing key %s: %w", k.Kid, err)
		}
		key, ok := parsed.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("stored signing key %s is %T, want Ed25519", k.Kid, parsed)
		}
		k.Private, k.CreatedAt, k.ActiveAt = key, fromMicros(created), fromMicros(active)
		out = append(out, k)
	}
	return out, s.classify(ctx, rows.Err())
}

// AddSigningKey stores a key (key rotation).
func (s *Store) AddSigningKey(ctx context.Context, k store.SigningKey) error {
	return s.inTx(ctx, true, func(tx *sql.Tx) error { return s.insertKey(ctx, tx, k) })
}

// EnsureSigningKey stores k unless a key exists already. Replicas starting
// together all call it; the lock makes them agree on one key.
func (s *Store) EnsureSigningKey(ctx context.Context, k store.SigningKey) error {
	return s.inTx(ctx, true, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM signing_keys`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		return s.insertKey(ctx, tx, k)
	})
}

func (s *Store) insertKey(ctx context.Context, tx *sql.Tx, k store.SigningKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO signing_keys (kid, private_key, created_at, active_at) VALUES (?, ?, ?, ?)`),
		k.Kid, der, micros(k.CreatedAt), micros(k.ActiveAt))
	return err
}
