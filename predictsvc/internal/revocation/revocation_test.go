package revocation

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
)

// feed serves revocations the way authsvc's ListRevocations does: entries
// after the cursor, a page at a time. (The real authsvc is driven in the
// end-to-end tests.)
type feed struct {
	mu      sync.Mutex
	entries []*authv1.Revocation
	page    int
	down    bool
}

func (f *feed) ListRevocations(_ context.Context, req *authv1.ListRevocationsRequest, _ ...grpc.CallOption) (*authv1.ListRevocationsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errors.New("connection refused")
	}
	start := 0
	if req.GetCursor() != "" {
		start, _ = strconv.Atoi(req.GetCursor())
	}
	end := min(start+f.page, len(f.entries))
	return &authv1.ListRevocationsResponse{Revocations: f.entries[start:end], Cursor: strconv.Itoa(end), More: end < len(f.entries)}, nil
}

func (f *feed) add(sid string, forget time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, &authv1.Revocation{SessionId: sid, ForgetTime: timestamppb.New(forget)})
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func newFollower(t *testing.T, fd *feed, c *clock) *Follower {
	f, err := New(Config{Feed: fd, Poll: time.Second, MaxStale: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func revoked(t *testing.T, f *Follower, sid string) bool {
	t.Helper()
	r, err := f.IsRevoked(context.Background(), sid)
	if err != nil {
		t.Fatalf("IsRevoked(%s): %v", sid, err)
	}
	return r
}

func TestFollowerTracksRevocations(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	fd := &feed{page: 2}
	for i := range 5 {
		fd.add("s"+strconv.Itoa(i), c.now().Add(10*time.Minute))
	}
	fd.add("already-forgettable", c.now().Add(-time.Second))
	f := newFollower(t, fd, c)
	if _, err := f.IsRevoked(context.Background(), "s0"); !errors.Is(err, ErrStale) {
		t.Fatalf("before the first read: %v, want ErrStale", err)
	}
	if err := f.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Synced():
	default:
		t.Fatal("Synced not closed after a complete read")
	}
	for i := range 5 {
		if !revoked(t, f, "s"+strconv.Itoa(i)) {
			t.Errorf("s%d not revoked (pages of 2 must all be read)", i)
		}
	}
	if revoked(t, f, "active") || revoked(t, f, "already-forgettable") {
		t.Fatal("an active or forgettable session counts as revoked")
	}
	fd.add("s5", c.now().Add(10*time.Minute))
	if err := f.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !revoked(t, f, "s5") {
		t.Fatal("a revocation after the cursor was missed")
	}
	c.advance(11 * time.Minute)
	if err := f.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if revoked(t, f, "s0") {
		t.Fatal("an entry past its forget time is kept")
	}
}

// With the feed unreachable past MaxStale the follower refuses to vouch for
// any token, then recovers by itself.
func TestFollowerFailsClosedWhenStale(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	fd := &feed{page: 10}
	f := newFollower(t, fd, c)
	if err := f.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	fd.mu.Lock()
	fd.down = true
	fd.mu.Unlock()
	c.advance(30 * time.Second)
	if err := f.Sync(context.Background()); err == nil {
		t.Fatal("Sync succeeded with the feed down")
	}
	if revoked(t, f, "s") {
		t.Fatal("unexpected revocation")
	}
	c.advance(31 * time.Second)
	if _, err := f.IsRevoked(context.Background(), "s"); !errors.Is(err, ErrStale) {
		t.Fatalf("after 61s without a read: %v, want ErrStale", err)
	}
	fd.mu.Lock()
	fd.down = false
	fd.mu.Unlock()
	if err := f.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.Fresh(context.Background()); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestNewRejectsConfig(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, cfg := range map[string]Config{
		"no feed":          {Poll: time.Second, MaxStale: time.Minute, Logger: log, Now: time.Now},
		"zero poll":        {Feed: &feed{}, MaxStale: time.Minute, Logger: log, Now: time.Now},
		"stale below poll": {Feed: &feed{}, Poll: time.Minute, MaxStale: time.Second, Logger: log, Now: time.Now},
		"no clock":         {Feed: &feed{}, Poll: time.Second, MaxStale: time.Minute, Logger: log},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
