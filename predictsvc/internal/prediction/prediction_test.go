package prediction

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/model/modeltest"
)

func irisService(t testing.TB) *Service {
	t.Helper()
	catalog, err := model.NewCatalog(modeltest.Bundled(t)...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewService(catalog, 8)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzPredict throws arbitrary model names and feature vectors at the real
// iris model: every request either succeeds with one prediction per instance
// and probabilities that sum to 1, or fails with a client error — never a
// panic and never anything that would map to INTERNAL.
func FuzzPredict(f *testing.F) {
	s := irisService(f)
	f.Add("iris", 5.1, 3.5, 1.4, 0.2, 1)
	f.Add("", 0.0, 0.0, 0.0, 0.0, 0)             // P1
	f.Add("tulips", 1.0, 2.0, 3.0, 4.0, 1)       // P2
	f.Add("iris", math.NaN(), 3.5, 1.4, 0.2, 1)  // P4
	f.Add("iris", math.Inf(1), 3.5, 1.4, 0.2, 1) // P4
	f.Add("iris", 3e38, -3e38, 3e38, 3e38, 3)    // overflow
	f.Add("iris", 5.1, 3.5, 1.4, 0.2, 9)         // over the batch limit
	f.Add("iris", 5.1, 3.5, 1.4, 0.2, -1)        // P3: three features
	f.Fuzz(func(t *testing.T, name string, a, b, c, d float64, n int) {
		features := []float32{float32(a), float32(b), float32(c), float32(d)}
		if n < 0 {
			features, n = features[:3], 1
		}
		batch := make([][]float32, n%16)
		for i := range batch {
			batch[i] = features
		}
		res, err := s.Predict(context.Background(), nil, name, batch)
		if err != nil {
			var invalid *ValidationError
			if !errors.As(err, &invalid) && !errors.Is(err, model.ErrNotFound) && !errors.Is(err, model.ErrOutOfRange) && !errors.Is(err, ErrBatchTooLarge) {
				t.Fatalf("Predict(%q, %v × %d) = %v: not a client error", name, features, len(batch), err)
			}
			return
		}
		if len(res.Predictions) != len(batch) {
			t.Fatalf("%d predictions for %d instances", len(res.Predictions), len(batch))
		}
		for _, p := range res.Predictions {
			var sum float64
			for _, v := range p.Probabilities {
				sum += float64(v)
			}
			if math.Abs(sum-1) > 1e-3 || p.Label == "" {
				t.Fatalf("prediction %+v: probabilities sum to %v", p, sum)
			}
		}
	})
}

// BenchmarkPredict is validation plus one model run, per batch size.
func BenchmarkPredict(b *testing.B) {
	s := irisService(b)
	s.maxBatch = 1024
	for _, n := range []int{1, 8, 64} {
		batch := make([][]float32, n)
		for i := range batch {
			batch[i] = []float32{5.1, 3.5, 1.4, 0.2}
		}
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Predict(context.Background(), nil, "iris", batch); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("validate/batch=%d", n), func(b *testing.B) {
			m, _ := s.catalog.Get("iris")
			for b.Loop() {
				if err := s.validate(m.Info(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
