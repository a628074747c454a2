// Package model is the contract between the Predict handler and whatever runs
// a model: the Model interface, the Catalog of loaded models, and the loader
// that reads a model directory. It knows nothing of gRPC or of any runtime.
package model

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
)

// Info describes a model to its callers.
type Info struct {
	Name        string
	Version     string
	Description string
	// FeatureNames are the inputs, in the order a feature vector holds them.
	FeatureNames []string
	// Labels are the classes, in the order of a probability vector.
	Labels []string
	// RequiredScope, when set, is a scope a caller's token must carry to see
	// or run this model, on top of the method's own scope.
	RequiredScope string
}

// Model runs one model.
//
// Predict gets a batch of already-validated vectors (at least one, each
// len(Info().FeatureNames), all finite) and returns one probability vector per
// input, in input order, each len(Info().Labels). It returns the context's error
// when ctx ends first, an error wrapping ErrOutOfRange when an input is finite
// but too large for the model's arithmetic, and any other error for a fault in
// the model or its runtime.
//
// Implementations are safe for concurrent use.
type Model interface {
	Info() Info
	Predict(ctx context.Context, batch [][]float32) ([][]float32, error)
}

// ErrNotFound reports a model name the catalog does not hold.
var ErrNotFound = errors.New("unknown model")

// ErrOutOfRange reports an input whose values are finite but so large that the
// model's float32 arithmetic overflowed: the caller's input is at fault, not the
// model.
var ErrOutOfRange = errors.New("feature values too large for the model")

// Catalog holds the loaded models by name. It is immutable, so safe for
// concurrent use.
type Catalog struct {
	byName map[string]Model
	infos  []Info // sorted by name
}

// NewCatalog indexes models by Info().Name. Two models with one name are an
// error, since a request could not say which one it means.
func NewCatalog(models ...Model) (*Catalog, error) {
	c := &Catalog{byName: make(map[string]Model, len(models))}
	for i, m := range models {
		if m == nil {
			return nil, fmt.Errorf("model catalog: model %d is nil", i)
		}
		info := m.Info()
		if info.Name == "" {
			return nil, fmt.Errorf("model catalog: model %d has no name", i)
		}
		if _, dup := c.byName[info.Name]; dup {
			return nil, fmt.Errorf("model catalog: two models are named %q", info.Name)
		}
		c.byName[info.Name] = m
		c.infos = append(c.infos, cloneInfo(info))
	}
	sort.Slice(c.infos, func(i, j int) bool { return c.infos[i].Name < c.infos[j].Name })
	return c, nil
}

// Get returns the model called name, or an error wrapping ErrNotFound.
func (c *Catalog) Get(name string) (Model, error) {
	m, ok := c.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrNotFound, name)
	}
	return m, nil
}

// List describes every model, sorted by name. The caller may modify the result.
func (c *Catalog) List() []Info {
	out := make([]Info, len(c.infos))
	for i, info := range c.infos {
		out[i] = cloneInfo(info)
	}
	return out
}

// cloneInfo copies the slices so no caller can change what another sees.
func cloneInfo(info Info) Info {
	info.FeatureNames = slices.Clone(info.FeatureNames)
	info.Labels = slices.Clone(info.Labels)
	return info
}

// MetadataFile is the file that marks a directory as a model directory.
const MetadataFile = "metadata.json"

// FormatONNX is the only model format there is an adapter for.
const FormatONNX = "onnx"

// Bounds on what a model directory may hold, so that a mistaken or hostile
// directory is refused at start rather than served half-working: every
// model's metadata goes into every ListModels reply, and a name longer than a
// request may carry could never be asked for.
const (
	MaxNameBytes        = 128 // a model, feature or label name
	MaxDescriptionBytes = 4 << 10
	MaxNames            = 4096 // features or labels
	MaxMetadataBytes    = 1 << 20
	MaxModelFileBytes   = 512 << 20
)

// Metadata is a model directory's metadata.json: what the model is, which file
// holds it, and how its inputs and outputs are named.
type Metadata struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
	// Format selects the adapter that runs File; see FormatONNX.
	Format string `json:"format"`
	// File is the model file, relative to the model directory.
	File string `json:"file"`
	// Input and Output name the graph's input and output tensors.
	Input        string   `json:"input"`
	Output       string   `json:"output"`
	FeatureNames []string `json:"feature_names"`
	Labels       []string `json:"labels"`
	// RequiredScope restricts the model to tokens carrying this scope.
	RequiredScope string `json:"required_scope,omitempty"`
	// Training records how the model was made (script, library versions,
	// held-out accuracy). It is kept for people, not interpreted.
	Training json.RawMessage `json:"training,omitempty"`
}

// Info returns the part of the metadata callers of a Model see.
func (m Metadata) Info() Info {
	return cloneInfo(Info{
		Name:          m.Name,
		Version:       m.Version,
		Description:   m.Description,
		FeatureNames:  m.FeatureNames,
		Labels:        m.Labels,
		RequiredScope: m.RequiredScope,
	})
}

// Validate reports the first thing wrong with the metadata that would stop a
// model from being served. It does not look at the model file.
func (m Metadata) Validate() error {
	if err := checkName("name", m.Name); err != nil {
		return err
	}
	if strings.TrimSpace(m.Version) == "" {
		return errors.New("version: must not be empty")
	}
	if len(m.Version) > MaxNameBytes {
		return fmt.Errorf("version: %d bytes, at most %d", len(m.Version), MaxNameBytes)
	}
	if len(m.Description) > MaxDescriptionBytes {
		return fmt.Errorf("description: %d bytes, at most %d", len(m.Description), MaxDescriptionBytes)
	}
	if len(m.FeatureNames) > MaxNames || len(m.Labels) > MaxNames {
		return fmt.Errorf("feature_names and labels: at most %d each, got %d and %d", MaxNames, len(m.FeatureNames), len(m.Labels))
	}
	if m.Format != FormatONNX {
		return fmt.Errorf("format: %q is not a known format (want %q)", m.Format, FormatONNX)
	}
	// fs.ValidPath rejects "..", so the file cannot be outside the model directory.
	if m.File == "" || !fs.ValidPath(m.File) || m.File == "." {
		return fmt.Errorf("file: %q is not a path inside the model directory", m.File)
	}
	if len(m.FeatureNames) < 1 {
		return errors.New("feature_names: need at least 1 feature, got 0")
	}
	if err := checkNames("feature_names", m.FeatureNames); err != nil {
		return err
	}
	if len(m.RequiredScope) > MaxNameBytes {
		return fmt.Errorf("required_scope: %d bytes, at most %d", len(m.RequiredScope), MaxNameBytes)
	}
	if m.RequiredScope != "" && strings.ContainsFunc(m.RequiredScope, unicode.IsSpace) {
		return fmt.Errorf("required_scope: %q must be one scope, without spaces", m.RequiredScope)
	}
	if len(m.Labels) < 2 {
		return fmt.Errorf("labels: need at least 2 labels, got %d", len(m.Labels))
	}
	return checkNames("labels", m.Labels)
}

// checkNames wants every entry to be a valid, distinct name: a prediction is
// reported by label, so two equal labels could not be told apart.
func checkNames(field string, names []string) error {
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		if err := checkName(fmt.Sprintf("%s[%d]", field, i), n); err != nil {
			return err
		}
		if seen[n] {
			return fmt.Errorf("%s: %q appears twice", field, n)
		}
		seen[n] = true
	}
	return nil
}

// checkName wants something a client can type and a log line can show.
func checkName(field, name string) error {
	if name == "" {
		return fmt.Errorf("%s: must not be empty", field)
	}
	if len(name) > MaxNameBytes {
		return fmt.Errorf("%s: %d bytes, at most %d", field, len(name), MaxNameBytes)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%s: %q contains a space or an unprintable character", field, name)
		}
	}
	return nil
}

// LoadDir loads every model in fsys. A model is an immediate subdirectory that
// holds a metadata.json; other entries, and directories whose names start with
// "." (such as the ..data links of a Kubernetes ConfigMap mount), are skipped.
// Each metadata is validated, then open is called with it and the bytes of the
// file it names. It fails on the first bad directory, naming it, and when fsys
// holds no model at all, since a server with nothing to serve is misconfigured.
func LoadDir(fsys fs.FS, open func(meta Metadata, file []byte) (Model, error)) ([]Model, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("list model directories: %w", err)
	}
	var models []Model
	for _, e := range entries {
		dir := e.Name()
		if strings.HasPrefix(dir, ".") || !isDir(fsys, e) {
			continue
		}
		meta, err := readMetadata(fsys, dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not a model directory
		}
		if err != nil {
			return nil, fmt.Errorf("model directory %q: %w", dir, err)
		}
		file, err := readRegularFile(fsys, path.Join(dir, meta.File), MaxModelFileBytes)
		if err != nil {
			return nil, fmt.Errorf("model directory %q: file %q named by %s: %w", dir, meta.File, MetadataFile, err)
		}
		m, err := open(meta, file)
		if err != nil {
			return nil, fmt.Errorf("model directory %q: open %s: %w", dir, meta.File, err)
		}
		models = append(models, m)
	}
	if len(models) == 0 {
		return nil, fmt.Errorf("no models found: no subdirectory holds a %s", MetadataFile)
	}
	return models, nil
}

// isDir follows a symbolic link, which fs.DirEntry.IsDir does not.
func isDir(fsys fs.FS, e fs.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	info, err := fs.Stat(fsys, e.Name())
	return err == nil && info.IsDir()
}

// readMetadata returns an error wrapping fs.ErrNotExist only when dir has no
// metadata file.
func readMetadata(fsys fs.FS, dir string) (Metadata, error) {
	raw, err := readRegularFile(fsys, path.Join(dir, MetadataFile), MaxMetadataBytes)
	if err != nil {
		return Metadata{}, err
	}
	// Unknown fields are refused so that a misspelt key fails loudly instead of
	// leaving a field empty.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var meta Metadata
	if err := dec.Decode(&meta); err != nil {
		return Metadata{}, fmt.Errorf("%s: %w", MetadataFile, err)
	}
	if dec.More() {
		return Metadata{}, fmt.Errorf("%s: more than one JSON value", MetadataFile)
	}
	if err := meta.Validate(); err != nil {
		return Metadata{}, fmt.Errorf("%s: %w", MetadataFile, err)
	}
	return meta, nil
}

// readRegularFile reads name, which must be a regular file (after symbolic
// links) of at most limit bytes: a FIFO would block start-up forever and a
// device such as /dev/zero would never end.
func readRegularFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	info, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", name, info.Mode().Type())
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, at most %d", name, info.Size(), limit)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit { // grew since Stat
		return nil, fmt.Errorf("%s: more than %d bytes", name, limit)
	}
	return data, nil
}

// Observer is told of every model run (for metrics).
type Observer interface {
	ObservePrediction(info Info, batchSize int, seconds float64, err error)
}

// Instrument wraps m so that every Predict is reported to obs.
func Instrument(m Model, obs Observer) Model { return instrumented{Model: m, obs: obs, info: m.Info()} }

type instrumented struct {
	Model
	obs  Observer
	info Info // taken once: Info copies its slices on every call
}

func (i instrumented) Predict(ctx context.Context, batch [][]float32) ([][]float32, error) {
	start := time.Now()
	out, err := i.Model.Predict(ctx, batch)
	i.obs.ObservePrediction(i.info, len(batch), time.Since(start).Seconds(), err)
	return out, err
}
