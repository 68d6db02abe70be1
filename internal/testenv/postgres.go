package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a real PostgreSQL server from Debian's binaries (initdb and
// pg_ctl), in a temporary directory, listening on 127.0.0.1 on a free port.
// StartPostgres starts one; the test's cleanup stops it (by its PID, even when
// the test fails).
type Postgres struct {
	Dir  string // data directory
	Port int
	bin  string
	cred *syscall.Credential
	tb   testing.TB
	n    atomic.Int64
}

// postgresBin finds the directory holding initdb, pg_ctl and postgres:
// CAMPAIGND_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else PATH.
func postgresBin() (string, bool) {
	if d := os.Getenv("CAMPAIGND_PG_BIN"); d != "" {
		return d, true
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, true
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), true
	}
	return "", false
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// HavePostgres reports whether PostgreSQL's server binaries are installed.
func HavePostgres() bool { _, ok := postgresBin(); return ok }

// StartPostgres starts a fresh PostgreSQL cluster for the test, or skips
// (fails in CI) when PostgreSQL is not installed. As root it runs the server
// as the "postgres" user, since PostgreSQL refuses to run as root.
func StartPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	bin, ok := postgresBin()
	if !ok {
		Missing(tb, "PostgreSQL server binaries not found (apt-get install postgresql)")
	}
	p := &Postgres{bin: bin, tb: tb}
	base := tb.TempDir()
	p.Dir = filepath.Join(base, "pgdata")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			Missing(tb, "running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(base, 0o755); err != nil {
			tb.Fatal(err)
		}
		for d := base; d != "/" && d != "."; d = filepath.Dir(d) {
			// The server user must be able to reach its data directory.
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				_ = os.Chmod(d, fi.Mode().Perm()|0o011)
			}
		}
		if err := os.Chown(base, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	if out, err := p.run("initdb", "-D", p.Dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	p.Port = FreePort(tb)
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = ''\n"+
		"fsync = on\nmax_connections = 200\nshared_buffers = 64MB\n", p.Port)
	f, err := os.OpenFile(filepath.Join(p.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := f.WriteString(conf); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	p.Start()
	tb.Cleanup(p.Kill)
	return p
}

func (p *Postgres) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Dir = filepath.Dir(p.Dir)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.Bytes(), err
}

// Start starts (or restarts) the server and waits until it accepts
// connections.
func (p *Postgres) Start() {
	p.tb.Helper()
	logf := filepath.Join(filepath.Dir(p.Dir), "postgres.log")
	if out, err := p.run("pg_ctl", "-D", p.Dir, "-l", logf, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(logf)
		p.tb.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the server at once (pg_ctl -m immediate): like a crash, it
// loses nothing committed.
func (p *Postgres) Stop() {
	if out, err := p.run("pg_ctl", "-D", p.Dir, "-m", "immediate", "-w", "stop"); err != nil {
		p.tb.Logf("pg_ctl stop: %v\n%s", err, out)
	}
}

// Kill stops the server by its PID (SIGKILL to the postmaster and its
// children), whatever state the test left it in.
func (p *Postgres) Kill() {
	b, err := os.ReadFile(filepath.Join(p.Dir, "postmaster.pid"))
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscanf(string(b), "%d", &pid); err != nil || pid <= 0 {
		return
	}
	p.Stop()
	if syscall.Kill(pid, 0) == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// DSN returns the address of database db on this server.
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// NewDatabase creates an empty database and returns its DSN: one server,
// a database per test.
func (p *Postgres) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d_%d", time.Now().UnixNano()%1e9, p.n.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	return p.DSN(name)
}
