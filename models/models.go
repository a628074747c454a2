// Package models holds the model files that ship inside the predictsvc binary.
package models

import (
	"embed"
	"io/fs"
)

// The training script stays out of the binary: it is how the files were made,
// not something predictsvc serves.
//
//go:embed iris/*.onnx iris/*.json
var bundled embed.FS

// Bundled returns the model set predictsvc serves when no --model-dir is given.
// It has the same layout a --model-dir must have: one directory per model at
// the root (here only "iris/"), each holding a metadata.json and the model file
// it names. iris/golden.json pins the outputs the model must reproduce.
func Bundled() fs.FS {
	return bundled
}
