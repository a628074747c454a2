package schema

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadOrdersAndFiltersPending(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_b.sql":   {Data: []byte("B")},
		"m/0001_a.sql":   {Data: []byte("A")},
		"m/0010_c.sql":   {Data: []byte("C")},
		"m/readme.txt":   {Data: []byte("ignored")},
		"other/0003.sql": {Data: []byte("elsewhere")},
	}
	ms, err := Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.SQL)
	}
	if strings.Join(got, "") != "ABC" || Latest(ms) != 10 {
		t.Fatalf("Load = %v, latest %d", got, Latest(ms))
	}
	if p := Pending(ms, 2); len(p) != 1 || p[0].Version != 10 {
		t.Fatalf("Pending(2) = %v", p)
	}
	if p := Pending(ms, 0); len(p) != 3 {
		t.Fatalf("Pending(0) = %v", p)
	}
	if p := Pending(ms, 10); len(p) != 0 {
		t.Fatalf("Pending(10) = %v", p)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := map[string]fstest.MapFS{
		"no number":     {"m/init.sql": {}},
		"zero":          {"m/0000_x.sql": {}},
		"duplicate":     {"m/0001_a.sql": {}, "m/001_b.sql": {}},
		"no underscore": {"m/0001.sql": {}},
	}
	for name, fsys := range tests {
		if _, err := Load(fsys, "m"); err == nil {
			t.Errorf("%s: Load succeeded", name)
		}
	}
}
