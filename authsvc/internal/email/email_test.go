package email

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"test@example.com", "test@example.com"},
		{"TEST@Example.COM", "test@example.com"},
		{" test@example.com ", "test@example.com"},
		{"   test@example.com", "test@example.com"},
		{"first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"},
		{"ÄDA@bücher.de", "äda@bücher.de"},
		{"cafe\u0301@example.com", "café@example.com"},
		{"café@example.com", "café@example.com"},
		{"ｆｕｌｌ@example.com", "full@example.com"},
		{"ΣΟΦΙΑ@example.com", "σοφια@example.com"},
		{"σοφιας@example.com", "σοφιασ@example.com"},
		{"STRASSE@example.com", "strasse@example.com"},
		{"straße@example.com", "strasse@example.com"},
	}
	for _, tt := range tests {
		got, err := Canonical(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCanonicalRejects(t *testing.T) {
	tests := []struct {
		name, in, wantReason string
	}{
		{"empty", "", "is required"},
		{"spaces only", "   ", "is required"},
		{"no at sign", "no-at-sign", "must contain an @"},
		{"two at signs", "a@b@example.com", "exactly one @"},
		{"300 characters", strings.Repeat("a", 290) + "@example.com", "at most 254 bytes"},
		{"inner newline", "a\n@example.com", "white space"},
		{"trailing newline", "a@example.com\n", "white space"},
		{"leading tab", "\ta@example.com", "white space"},
		{"inner space", "a b@example.com", "white space"},
		{"header injection", "a@example.com\r\nBcc: x@example.com", "white space"},
		{"nul", "a\x00@example.com", "control"},
		{"display name", "Ada <ada@example.com>", "white space"},
		{"angle brackets", "<ada@example.com>", "plain address"},
		{"no local part", "@example.com", "before the @"},
		{"long local part", strings.Repeat("a", 65) + "@example.com", "before the @"},
		{"dot at start", ".a@example.com", "dot"},
		{"double dot", "a..b@example.com", "dot"},
		{"no domain dot", "a@localhost", "must have a dot"},
		{"empty label", "a@example..com", "empty or over-long"},
		{"hyphen label", "a@-example.com", "hyphen"},
		{"underscore domain", "a@ex_ample.com", "only letters"},
		{"invalid utf8", "a\xff@example.com", "UTF-8"},
		{"zero-width space", "zw\u200b@example.com", "invisible"},
		{"byte order mark", "\ufeffbom@example.com", "invisible"},
		{"right-to-left override", "rlo\u202e@example.com", "invisible"},
		{"soft hyphen", "so\u00adft@example.com", "invisible"},
		{"megabyte", strings.Repeat("a", 1<<20), "at most 254 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Canonical(tt.in)
			var invalid *InvalidError
			if !errors.As(err, &invalid) || !strings.Contains(err.Error(), tt.wantReason) {
				t.Fatalf("Canonical(%q) error = %v, want InvalidError containing %q", tt.in, err, tt.wantReason)
			}
		})
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"test@example.com", " TEST@Example.COM ", "no-at-sign", "a\n@b.c", "a@b@c.d", "ꭰꮃꭹ@example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := Canonical(raw)
		if err != nil {
			return
		}
		// The canonical form is a fixed point and stays within bounds.
		if again, err := Canonical(got); err != nil || again != got {
			t.Fatalf("Canonical(%q) = %q, but Canonical of that = %q, %v", raw, got, again, err)
		}
		if len(got) > MaxLength || strings.Count(got, "@") != 1 {
			t.Fatalf("Canonical(%q) = %q breaks its own rules", raw, got)
		}
	})
}

// Every code point folds to a fixed point, so no address has two canonical
// forms (x/text's Fold alone swaps Cherokee's two cases back and forth).
func TestFoldIsIdempotentForEveryCodePoint(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		once := fold(string(r))
		if twice := fold(once); twice != once {
			t.Errorf("%U folds to %q, which folds to %q", r, once, twice)
		}
	}
}

// Both cases of a Cherokee address are one account.
func TestCherokeeCasesAreOneAddress(t *testing.T) {
	upper, err := Canonical("ᎠᎳᎩ@example.com")
	if err != nil {
		t.Fatal(err)
	}
	lower, err := Canonical("ꭰꮃꭹ@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if upper != lower {
		t.Fatalf("Canonical gives %q and %q for the two cases of one address", upper, lower)
	}
	if again, _ := Canonical(upper); again != upper {
		t.Fatalf("Canonical(%q) = %q: not a fixed point", upper, again)
	}
}
