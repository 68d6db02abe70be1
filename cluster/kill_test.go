package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"campaignd/internal/testenv"
)

// helperEnv carries the DSN to the helper process.
const helperEnv = "CAMPAIGND_CLUSTER_HELPER_DSN"

// TestHelperElector is not a test: TestElectorSIGKILL runs the test binary
// again with helperEnv set, and this runs an elector named "child" with the
// production timings until it is killed, printing LEADING when it leads.
func TestHelperElector(t *testing.T) {
	dsn := os.Getenv(helperEnv)
	if dsn == "" {
		t.Skip("helper process for TestElectorSIGKILL")
	}
	e, err := NewElector(dsn, Options{Node: "child"})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	_ = e.Run(context.Background(), func(ctx context.Context, epoch int64) {
		fmt.Println("LEADING", epoch)
		<-ctx.Done()
	})
}

// TestElectorSIGKILL: the leader is a separate process, killed with SIGKILL
// (no resignation): another node leads within 15 s, once its lease expires.
func TestElectorSIGKILL(t *testing.T) {
	_, dsn := database(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperElector$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dsn)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	leading := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "LEADING") {
				leading <- sc.Text()
			}
		}
	}()
	select {
	case l := <-leading:
		t.Logf("helper process: %s", l)
	case <-time.After(30 * time.Second):
		t.Fatal("the helper process did not lead")
	}

	rec := &recorder{}
	b := startNode(t, dsn, "b", Options{}, rec)
	c := startNode(t, dsn, "c", Options{}, rec)
	testenv.Eventually(t, 30*time.Second, "both nodes see the helper lead", func() bool {
		vb, eb := b.e.Leader()
		vc, ec := c.e.Leader()
		return eb == nil && ec == nil && vb.Node == "child" && vc.Node == "child"
	})
	if len(leaders(b, c)) != 0 {
		t.Fatal("a node leads beside the helper")
	}

	t0 := time.Now()
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	l := waitOneLeader(t, takeoverBound+5*time.Second, b, c)
	d := time.Since(t0)
	t.Logf("SIGKILL of the leader: %s took over after %v (bound %v)", l.name, d, takeoverBound)
	if d > takeoverBound {
		t.Errorf("takeover took %v, want ≤ %v", d, takeoverBound)
	}
	b.stop()
	c.stop()
	rec.check(t)
}
