package model_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/mlgate/mlgate/models"
	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/model/modeltest"
	"github.com/mlgate/mlgate/predictsvc/internal/model/onnxmodel"
)

// irisFiles returns the bundled model's metadata (as a JSON object that a test
// can change) and its ONNX bytes.
func irisFiles(t *testing.T) (map[string]any, []byte) {
	t.Helper()
	raw, err := fs.ReadFile(models.Bundled(), "iris/metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	file, err := fs.ReadFile(models.Bundled(), "iris/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	return meta, file
}

func marshal(t *testing.T, v any) *fstest.MapFile {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &fstest.MapFile{Data: raw}
}

// openIrisAs opens the bundled model under another name.
func openIrisAs(t *testing.T, name string) model.Model {
	t.Helper()
	meta, file := modeltest.IrisFiles(t)
	meta.Name = name
	m, err := onnxmodel.Open(meta, file)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoadDirBundled(t *testing.T) {
	loaded, err := model.LoadDir(models.Bundled(), onnxmodel.Open)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].Info().Name != "iris" {
		t.Fatalf("loaded %d models, want just iris", len(loaded))
	}
}

func TestLoadDirSkips(t *testing.T) {
	meta, file := irisFiles(t)
	fsys := fstest.MapFS{
		"iris/metadata.json":        marshal(t, meta),
		"iris/model.onnx":           {Data: file},
		"README.md":                 {Data: []byte("top-level files are not models")},
		"notes/todo.txt":            {Data: []byte("a directory without metadata.json is not a model")},
		"..data/iris/metadata.json": {Data: []byte("hidden directories are skipped, even broken ones")},
	}
	loaded, err := model.LoadDir(fsys, onnxmodel.Open)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 {
		t.Fatalf("loaded %d models, want 1", len(loaded))
	}
}

func TestLoadDirErrors(t *testing.T) {
	_, file := irisFiles(t)
	// withMeta is a model directory "bad" whose metadata is iris's, edited.
	withMeta := func(edit func(map[string]any)) fstest.MapFS {
		meta, _ := irisFiles(t)
		edit(meta)
		return fstest.MapFS{
			"bad/metadata.json": marshal(t, meta),
			"bad/model.onnx":    {Data: file},
		}
	}
	failingOpen := func(model.Metadata, []byte) (model.Model, error) {
		return nil, errors.New("runtime refused the file")
	}

	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		open func(model.Metadata, []byte) (model.Model, error)
		want string
	}{
		{"missing name", withMeta(func(m map[string]any) { delete(m, "name") }), nil, "name: must not be empty"},
		{"name with a space", withMeta(func(m map[string]any) { m["name"] = "my model" }), nil, "contains a space"},
		{"missing version", withMeta(func(m map[string]any) { delete(m, "version") }), nil, "version: must not be empty"},
		{"no features", withMeta(func(m map[string]any) { m["feature_names"] = []string{} }), nil, "feature_names: need at least 1 feature"},
		{"missing features", withMeta(func(m map[string]any) { delete(m, "feature_names") }), nil, "feature_names: need at least 1 feature"},
		{"empty feature name", withMeta(func(m map[string]any) { m["feature_names"] = []string{"a", "", "c", "d"} }), nil, "feature_names[1]: must not be empty"},
		{"one label", withMeta(func(m map[string]any) { m["labels"] = []string{"setosa"} }), nil, "labels: need at least 2 labels, got 1"},
		{"missing labels", withMeta(func(m map[string]any) { delete(m, "labels") }), nil, "labels: need at least 2 labels, got 0"},
		{"repeated label", withMeta(func(m map[string]any) { m["labels"] = []string{"a", "b", "a"} }), nil, `labels: "a" appears twice`},
		{"unknown format", withMeta(func(m map[string]any) { m["format"] = "pmml" }), nil, `format: "pmml" is not a known format`},
		{"missing format", withMeta(func(m map[string]any) { delete(m, "format") }), nil, `format: "" is not a known format`},
		{"missing file field", withMeta(func(m map[string]any) { delete(m, "file") }), nil, `file: "" is not a path inside the model directory`},
		{"file outside the directory", withMeta(func(m map[string]any) { m["file"] = "../iris/model.onnx" }), nil, "is not a path inside the model directory"},
		{"file not there", withMeta(func(m map[string]any) { m["file"] = "missing.onnx" }), nil, `file "missing.onnx" named by metadata.json`},
		{"misspelt field", withMeta(func(m map[string]any) { m["feature_name"] = m["feature_names"] }), nil, `unknown field "feature_name"`},
		{"not JSON", fstest.MapFS{"bad/metadata.json": {Data: []byte("name: iris")}}, nil, "metadata.json: invalid character"},
		{"two JSON values", fstest.MapFS{"bad/metadata.json": {Data: []byte(`{} {}`)}}, nil, "more than one JSON value"},
		{"open fails", withMeta(func(map[string]any) {}), failingOpen, "open model.onnx: runtime refused the file"},
		{"graph disagrees", withMeta(func(m map[string]any) { m["feature_names"] = []string{"a", "b", "c"} }), nil, "the graph takes 4 features, metadata lists 3"},
		{"name longer than a request may ask for", withMeta(func(m map[string]any) { m["name"] = strings.Repeat("n", 129) }), nil, "name: 129 bytes, at most 128"},
		{"label too long", withMeta(func(m map[string]any) { m["labels"] = []string{"a", strings.Repeat("b", 200)} }), nil, "labels[1]: 200 bytes, at most 128"},
		{"description too long for every ListModels reply", withMeta(func(m map[string]any) { m["description"] = strings.Repeat("d", 5000) }), nil, "description: 5000 bytes, at most 4096"},
		{"model file is a FIFO", fstest.MapFS{
			"bad/metadata.json": withMeta(func(map[string]any) {})["bad/metadata.json"],
			"bad/model.onnx":    {Mode: fs.ModeNamedPipe},
		}, nil, "bad/model.onnx: not a regular file"},
		{"metadata is a device", fstest.MapFS{"bad/metadata.json": {Mode: fs.ModeDevice | fs.ModeCharDevice}}, nil, "bad/metadata.json: not a regular file"},
		{"metadata too large", fstest.MapFS{"bad/metadata.json": {Data: make([]byte, model.MaxMetadataBytes+1)}}, nil, "at most 1048576"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := tc.open
			if open == nil {
				open = onnxmodel.Open
			}
			loaded, err := model.LoadDir(tc.fsys, open)
			if err == nil {
				t.Fatalf("loaded %d models, want an error", len(loaded))
			}
			for _, want := range []string{`model directory "bad"`, tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}

	// On a real directory: a link to a device that never ends and a FIFO
	// that never opens are refused at once instead of hanging the start.
	t.Run("special files on disk", func(t *testing.T) {
		meta, _ := irisFiles(t)
		for name, plant := range map[string]func(string) error{
			"link to /dev/zero": func(p string) error { return os.Symlink("/dev/zero", p) },
			"FIFO":              func(p string) error { return syscall.Mkfifo(p, 0o600) },
		} {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "bad"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "bad", "metadata.json"), marshal(t, meta).Data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := plant(filepath.Join(dir, "bad", "model.onnx")); err != nil {
				t.Fatal(err)
			}
			_, err := model.LoadDir(os.DirFS(dir), onnxmodel.Open)
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: error %v, want not a regular file", name, err)
			}
		}
	})

	t.Run("no models", func(t *testing.T) {
		_, err := model.LoadDir(fstest.MapFS{"notes/a.txt": {}}, onnxmodel.Open)
		if err == nil || !strings.Contains(err.Error(), "no models found") {
			t.Errorf("error %v, want no models found", err)
		}
	})
}

func TestCatalog(t *testing.T) {
	zeta, alpha, iris := openIrisAs(t, "zeta"), openIrisAs(t, "alpha"), openIrisAs(t, "iris")

	catalog, err := model.NewCatalog(zeta, alpha, iris)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("get", func(t *testing.T) {
		for _, name := range []string{"zeta", "alpha", "iris"} {
			m, err := catalog.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			if m.Info().Name != name {
				t.Errorf("Get(%q) returned %q", name, m.Info().Name)
			}
		}
	})

	t.Run("get unknown", func(t *testing.T) {
		for _, name := range []string{"", "IRIS", "nope"} {
			_, err := catalog.Get(name)
			if !errors.Is(err, model.ErrNotFound) {
				t.Errorf("Get(%q) error %v, want ErrNotFound", name, err)
			}
			if err != nil && !strings.Contains(err.Error(), `"`+name+`"`) {
				t.Errorf("Get(%q) error %q does not name the model", name, err)
			}
		}
	})

	t.Run("list sorted", func(t *testing.T) {
		var names []string
		for _, info := range catalog.List() {
			names = append(names, info.Name)
		}
		if want := []string{"alpha", "iris", "zeta"}; !slices.Equal(names, want) {
			t.Errorf("List names %q, want %q", names, want)
		}
	})

	t.Run("list is a copy", func(t *testing.T) {
		catalog.List()[0].Labels[0] = "changed"
		if got := catalog.List()[0].Labels[0]; got != "setosa" {
			t.Errorf("List shares its slices: label is %q", got)
		}
	})

	t.Run("duplicate names", func(t *testing.T) {
		_, err := model.NewCatalog(iris, alpha, openIrisAs(t, "iris"))
		if err == nil || !strings.Contains(err.Error(), `two models are named "iris"`) {
			t.Errorf("error %v, want duplicate iris rejected", err)
		}
	})

	t.Run("nil model", func(t *testing.T) {
		if _, err := model.NewCatalog(iris, nil); err == nil {
			t.Error("nil model accepted")
		}
	})

	t.Run("empty", func(t *testing.T) {
		empty, err := model.NewCatalog()
		if err != nil {
			t.Fatal(err)
		}
		if len(empty.List()) != 0 {
			t.Error("empty catalog lists models")
		}
		if _, err := empty.Get("iris"); !errors.Is(err, model.ErrNotFound) {
			t.Errorf("error %v, want ErrNotFound", err)
		}
	})
}
