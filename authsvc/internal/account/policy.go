package account

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The roles mlgate itself relies on.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// RolePolicy maps each role to the scopes its tokens carry. A user's token
// carries the union of its roles' scopes.
type RolePolicy map[string][]string

// DefaultRolePolicy: users may predict and read model metadata; admins may
// also administer accounts.
func DefaultRolePolicy() RolePolicy {
	return RolePolicy{
		RoleUser:  {"predict", "models:read"},
		RoleAdmin: {"predict", "models:read", "admin"},
	}
}

// ParseRolePolicy reads "role=scope scope;role=scope", the --role-scopes
// flag's form.
func ParseRolePolicy(spec string) (RolePolicy, error) {
	p := RolePolicy{}
	for _, entry := range strings.Split(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		role, scopes, ok := strings.Cut(entry, "=")
		role = strings.TrimSpace(role)
		if !ok || role == "" || strings.ContainsAny(role, " \t") {
			return nil, fmt.Errorf("role policy entry %q: want role=scope scope", entry)
		}
		if _, dup := p[role]; dup {
			return nil, fmt.Errorf("role policy names %q twice", role)
		}
		p[role] = strings.Fields(scopes)
	}
	return p, p.Validate()
}

// Validate checks the roles mlgate relies on are there.
func (p RolePolicy) Validate() error {
	if _, ok := p[RoleUser]; !ok {
		return errors.New(`role policy must define the "user" role (every new account has it)`)
	}
	if _, ok := p[RoleAdmin]; !ok {
		return errors.New(`role policy must define the "admin" role`)
	}
	return nil
}

// Scopes is the sorted union of roles' scopes; unknown roles add nothing.
func (p RolePolicy) Scopes(roles []string) []string {
	var out []string
	for _, r := range roles {
		for _, s := range p[r] {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Known reports whether role is in the policy.
func (p RolePolicy) Known(role string) bool {
	_, ok := p[role]
	return ok
}

// String renders the policy in the flag's form, roles sorted.
func (p RolePolicy) String() string {
	roles := make([]string, 0, len(p))
	for r := range p {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	parts := make([]string, len(roles))
	for i, r := range roles {
		parts[i] = r + "=" + strings.Join(p[r], " ")
	}
	return strings.Join(parts, ";")
}
