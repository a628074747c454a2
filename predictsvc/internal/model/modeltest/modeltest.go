// Package modeltest opens the bundled models for tests, the way predictsvc
// does at start.
package modeltest

import (
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/mlgate/mlgate/models"
	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/model/onnxmodel"
)

// Bundled returns every bundled model, run by the ONNX adapter.
func Bundled(t testing.TB) []model.Model {
	t.Helper()
	loaded, err := model.LoadDir(models.Bundled(), onnxmodel.Open)
	if err != nil {
		t.Fatal(err)
	}
	return loaded
}

// Iris returns the bundled Iris classifier.
func Iris(t testing.TB) model.Model {
	t.Helper()
	for _, m := range Bundled(t) {
		if m.Info().Name == "iris" {
			return m
		}
	}
	t.Fatal("the bundled models hold no iris")
	return nil
}

// IrisFiles returns the bundled Iris metadata and ONNX bytes, for tests that
// open variants of them.
func IrisFiles(t testing.TB) (model.Metadata, []byte) {
	t.Helper()
	raw, err := fs.ReadFile(models.Bundled(), "iris/metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	var meta model.Metadata
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	file, err := fs.ReadFile(models.Bundled(), "iris/"+meta.File)
	if err != nil {
		t.Fatal(err)
	}
	return meta, file
}
