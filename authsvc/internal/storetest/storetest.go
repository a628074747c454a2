// Package storetest is the contract every user store must pass. Each store
// implementation's tests call Run with a constructor for a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/store"
)

// Store is the part of a user store the contract covers.
type Store interface {
	CreateUser(ctx context.Context, u store.User) error
	UserByEmail(ctx context.Context, canonicalEmail string) (store.User, error)
}

// Run runs the contract against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"CreateThenLookup", testCreateThenLookup},
		{"LookupMissing", testLookupMissing},
		{"DuplicateEmail", testDuplicateEmail},
		{"ConcurrentDuplicates", testConcurrentDuplicates},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore(t)) })
	}
}

func newUser(id, email string) store.User {
	return store.User{
		ID:           id,
		Email:        email,
		PasswordHash: []byte("$2a$04$" + id),
		CreatedAt:    time.Date(2026, 12, 3, 10, 0, 0, 123456000, time.UTC),
	}
}

func testCreateThenLookup(t *testing.T, s Store) {
	ctx := context.Background()
	want := newUser("u1", "ada@example.com")
	if err := s.CreateUser(ctx, want); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	got, err := s.UserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	if got.ID != want.ID || got.Email != want.Email || string(got.PasswordHash) != string(want.PasswordHash) || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("UserByEmail = %+v, want %+v", got, want)
	}
}

func testLookupMissing(t *testing.T, s Store) {
	_, err := s.UserByEmail(context.Background(), "nobody@example.com")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByEmail(missing) error = %v, want store.ErrNotFound", err)
	}
}

func testDuplicateEmail(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, newUser("u1", "ada@example.com")); err != nil {
		t.Fatal(err)
	}
	err := s.CreateUser(ctx, newUser("u2", "ada@example.com"))
	if !errors.Is(err, store.ErrEmailTaken) {
		t.Fatalf("second CreateUser error = %v, want store.ErrEmailTaken", err)
	}
	got, err := s.UserByEmail(ctx, "ada@example.com")
	if err != nil || got.ID != "u1" {
		t.Fatalf("after duplicate, UserByEmail = %+v, %v; want the first user", got, err)
	}
}

// Fifty writers race for one email: exactly one wins, the rest see
// ErrEmailTaken (never another error), and the stored row is the winner's.
func testConcurrentDuplicates(t *testing.T, s Store) {
	const writers = 50
	ctx := context.Background()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		others  []error
	)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id := fmt.Sprintf("u%02d", i)
			err := s.CreateUser(ctx, newUser(id, "race@example.com"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, id)
			case !errors.Is(err, store.ErrEmailTaken):
				others = append(others, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 || len(others) != 0 {
		t.Fatalf("winners = %v, unexpected errors = %v; want exactly one winner and only ErrEmailTaken", winners, others)
	}
	got, err := s.UserByEmail(ctx, "race@example.com")
	if err != nil || got.ID != winners[0] {
		t.Fatalf("stored user = %+v, %v; want the winner %s", got, err, winners[0])
	}
}

func testCanceledContext(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.CreateUser(ctx, newUser("u1", "ada@example.com"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateUser(canceled) error = %v, want context.Canceled", err)
	}
	if _, err := s.UserByEmail(context.Background(), "ada@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a canceled CreateUser stored a user: %v", err)
	}
}
