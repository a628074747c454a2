// Package email validates email addresses and reduces them to the one canonical
// form under which they are stored and compared.
package email

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// MaxLength is the longest address accepted, in bytes (RFC 5321's path limit
// less the angle brackets).
const MaxLength = 254

const maxLocalLength = 64

// InvalidError says why an address was refused.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return "email " + e.Reason }

// Canonical trims surrounding spaces, normalises and case-folds raw
// (NFKC, full case folding, NFKC again: Unicode's NFKC_Casefold, so "ﬀ@x.io",
// "FF@x.io" and fullwidth "ｆｆ@x.io" are one address), then checks that what
// remains is one plain address: local@domain, no display name, no comments, no
// white space, control or invisible format characters anywhere (a newline,
// even a trailing one, is refused rather than trimmed), a domain of
// dot-separated labels.
func Canonical(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", &InvalidError{"is not valid UTF-8"}
	}
	if len(raw) > 4*MaxLength {
		return "", &InvalidError{fmt.Sprintf("must be at most %d bytes, got %d", MaxLength, len(raw))}
	}
	addr := fold(strings.Trim(raw, " "))
	if addr == "" {
		return "", &InvalidError{"is required"}
	}
	// Canonical forms must be fixed points, or one address could be stored
	// under a form that logs in as another. fold is one for every code point
	// today; this keeps a future Unicode table from breaking that silently.
	if fold(addr) != addr {
		return "", &InvalidError{"holds characters without a stable case-folded form"}
	}
	if len(addr) > MaxLength {
		return "", &InvalidError{fmt.Sprintf("must be at most %d bytes, got %d", MaxLength, len(addr))}
	}
	for _, r := range addr {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", &InvalidError{"must not contain white space, control or invisible formatting characters"}
		}
		if strings.ContainsRune(`"(),:;<>[\]`, r) {
			return "", &InvalidError{fmt.Sprintf("must be a plain address like name@example.com, got the character %q", r)}
		}
	}
	local, domain, found := strings.Cut(addr, "@")
	if !found {
		return "", &InvalidError{"must contain an @, like name@example.com"}
	}
	if strings.Contains(domain, "@") {
		return "", &InvalidError{"must contain exactly one @"}
	}
	if local == "" || len(local) > maxLocalLength {
		return "", &InvalidError{fmt.Sprintf("must have 1 to %d bytes before the @", maxLocalLength)}
	}
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return "", &InvalidError{"must not start or end its name with a dot or hold two dots in a row"}
	}
	if err := checkDomain(domain); err != nil {
		return "", err
	}
	return addr, nil
}

// fold is NFKC_Casefold: NFKC, full case folding, NFKC again. Cherokee is
// folded to its capital letters, as Unicode's CaseFolding.txt says
// (U+AB70 -> U+13A0, U+13F8 -> U+13F0); x/text's Fold swaps the two cases
// instead, which would give each Cherokee address two canonical forms.
func fold(s string) string {
	folded := cases.Fold().String(norm.NFKC.String(s))
	folded = strings.Map(func(r rune) rune {
		if (r >= 0x13A0 && r <= 0x13FD) || (r >= 0xAB70 && r <= 0xABBF) {
			return unicode.ToUpper(r)
		}
		return r
	}, folded)
	return norm.NFKC.String(folded)
}

func checkDomain(domain string) error {
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return &InvalidError{fmt.Sprintf("domain %q must have a dot, like example.com", domain)}
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 {
			return &InvalidError{fmt.Sprintf("domain %q has an empty or over-long label", domain)}
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return &InvalidError{fmt.Sprintf("domain %q has a label that starts or ends with a hyphen", domain)}
		}
		for _, r := range label {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return &InvalidError{fmt.Sprintf("domain %q may hold only letters, digits, hyphens and dots", domain)}
			}
		}
	}
	return nil
}
