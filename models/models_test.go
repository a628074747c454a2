package models_test

import (
	"io/fs"
	"slices"
	"testing"

	"github.com/mlgate/mlgate/models"
)

func TestBundledLayout(t *testing.T) {
	var files []string
	err := fs.WalkDir(models.Bundled(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The training script is how the files were made; it does not ship.
	want := []string{"iris/golden.json", "iris/metadata.json", "iris/model.onnx"}
	if !slices.Equal(files, want) {
		t.Errorf("bundled files %q, want %q", files, want)
	}
}
