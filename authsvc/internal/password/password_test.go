package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name       string
		pw         string
		wantReason string // "" means valid
	}{
		{"empty", "", "is required"},
		{"7 bytes", "1234567", "must be 8 to 72 bytes, got 7"},
		{"8 bytes", "12345678", ""},
		{"72 bytes", strings.Repeat("A", 72), ""},
		{"73 bytes", strings.Repeat("A", 73), "must be 8 to 72 bytes, got 73"},
		{"multibyte counted in bytes", strings.Repeat("é", 37), "got 74"},
		{"NUL byte", "abcd\x00efgh", "NUL"},
		{"trailing NUL", "abcdefgh\x00", "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.pw)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var invalid *InvalidError
			if !errors.As(err, &invalid) || !strings.Contains(err.Error(), tt.wantReason) {
				t.Fatalf("Validate error = %v, want InvalidError containing %q", err, tt.wantReason)
			}
			if tt.pw != "" && strings.Contains(err.Error(), tt.pw) {
				t.Fatalf("error %q repeats the password", err)
			}
		})
	}
}

func TestHasher(t *testing.T) {
	h, err := NewHasher(bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pw72 := strings.Repeat("A", 72)
	hash, err := h.Hash(pw72)
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost(hash); cost != bcrypt.MinCost {
		t.Fatalf("hash cost = %d, want %d", cost, bcrypt.MinCost)
	}
	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"same password", pw72, true},
		{"one byte more (bcrypt would truncate)", pw72 + "X", false},
		{"one byte less", pw72[:71], false},
		{"other password", "something-else", false},
	}
	for _, tt := range tests {
		got, err := h.Matches(hash, tt.pw)
		if err != nil || got != tt.want {
			t.Errorf("%s: Matches = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if _, err := h.Hash(pw72 + "X"); err == nil {
		t.Fatal("Hash accepted a 73-byte password")
	}
	if _, err := h.Matches([]byte("not a hash"), "password1"); err == nil {
		t.Fatal("Matches accepted a corrupt hash silently")
	}
}

func TestNewHasherRejectsCost(t *testing.T) {
	for _, cost := range []int{0, bcrypt.MinCost - 1, bcrypt.MaxCost + 1} {
		if _, err := NewHasher(cost); err == nil {
			t.Errorf("NewHasher(%d) succeeded", cost)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"", "short", strings.Repeat("A", 72), strings.Repeat("A", 73), "abc\x00defgh"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pw string) {
		err := Validate(pw)
		ok := len(pw) >= MinLength && len(pw) <= MaxLength && !strings.ContainsRune(pw, 0)
		if (err == nil) != ok {
			t.Fatalf("Validate(%d bytes) = %v, want ok=%v", len(pw), err, ok)
		}
	})
}

// A full pool answers ErrBusy at once instead of queueing without bound.
func TestPoolBoundsWork(t *testing.T) {
	h, err := NewHasher(bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(h, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := p.Hash(context.Background(), "a fine password")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Matches(context.Background(), hash, "a fine password"); !ok || err != nil {
		t.Fatalf("Matches = %v, %v", ok, err)
	}
	// Occupy the worker and the queue slot.
	release := make(chan struct{})
	running := make(chan struct{})
	go p.run(context.Background(), func() { close(running); <-release })
	<-running
	queued := make(chan error)
	go func() { queued <- p.run(context.Background(), func() {}) }()
	for len(p.admit) < 2 {
		runtime.Gosched()
	}
	if _, err := p.Matches(context.Background(), hash, "a fine password"); !errors.Is(err, ErrBusy) {
		t.Fatalf("third call with one worker and one queue slot = %v, want ErrBusy", err)
	}
	// A queued caller whose deadline passes gives up its place.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	close(release)
	if err := <-queued; err != nil {
		t.Fatalf("queued call: %v", err)
	}
	if err := p.run(ctx, func() {}); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled call: %v", err)
	}
	if _, err := NewPool(h, 0, 1); err == nil {
		t.Fatal("NewPool with no workers succeeded")
	}
}

func BenchmarkHash(b *testing.B) {
	for _, cost := range []int{10, DefaultCost} {
		h, err := NewHasher(cost)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("cost=%d", cost), func(b *testing.B) {
			for b.Loop() {
				if _, err := h.Hash("correct horse battery"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
