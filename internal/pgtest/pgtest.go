// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// database on the machine's server, or a whole throwaway cluster that a test
// can stop and start. Without a server, tests say plainly that they were
// skipped, except under CI=true, where they fail.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding the admin URL of the test server.
const EnvURL = "MLGATE_TEST_POSTGRES_URL"

const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf("SKIPPED: "+format, args...)
}

// AdminURL is the URL of a database the tests may create databases from.
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		u = defaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		unavailable(t, "no PostgreSQL server at %s (set %s): %v", redact(u), EnvURL, err)
	}
	conn.Close(ctx)
	return u
}

// NewDatabase creates an empty database for the test and drops it afterwards.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	suffix := make([]byte, 6)
	rand.Read(suffix)
	name := "mlgate_test_" + hex.EncodeToString(suffix)
	exec := func(sql string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE DATABASE " + name)
	t.Cleanup(func() { exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	return WithDatabase(t, admin, name)
}

// WithDatabase returns base with its database name replaced.
func WithDatabase(t testing.TB, base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// Cluster is a PostgreSQL server of the test's own, in a temporary directory
// on a free loopback port.
type Cluster struct {
	bin  string
	dir  string
	port int
}

// StartCluster initialises and starts a cluster; it is removed when the test
// ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		unavailable(t, "no PostgreSQL server binaries under /usr/lib/postgresql (Debian postgresql package)")
	}
	dir, err := os.MkdirTemp("", "mlgate-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &Cluster{bin: filepath.Dir(matches[len(matches)-1]), dir: dir, port: freePort(t)}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		if out, err := exec.Command("chown", "-R", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v: %s", err, out)
		}
	}
	c.run(t, "initdb", "-D", c.data(), "-A", "trust", "-U", "postgres", "--no-sync")
	c.Start(t)
	t.Cleanup(func() { c.pgctl("stop", "-m", "immediate") })
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// URL is the cluster's postgres database.
func (c *Cluster) URL() string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(c.port) + "/postgres?sslmode=disable"
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	opts := "-p " + strconv.Itoa(c.port) + " -k " + c.dir + " -c listen_addresses=127.0.0.1 -c fsync=off"
	if out, err := c.pgctl("start", "-w", "-t", "30", "-l", filepath.Join(c.dir, "server.log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		t.Fatalf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
}

// Stop shuts the server down (fast: open connections are cut).
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if out, err := c.pgctl("stop", "-w", "-m", "fast"); err != nil {
		t.Fatalf("pg_ctl stop: %v: %s", err, out)
	}
}

func (c *Cluster) pgctl(args ...string) ([]byte, error) {
	return c.command("pg_ctl", append([]string{"-D", c.data()}, args...)...).CombinedOutput()
}

func (c *Cluster) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := c.command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", name, err, out)
	}
}

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
