package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"campaignd/internal/testenv"
)

// startNodeSMSC runs smpp/testdata/nodesmsc/smsc.js (node-smpp, an SMSC we
// did not write) and returns its address and its command input. It is
// stopped at the end of the test.
func startNodeSMSC(t *testing.T) (addr string, stdin io.Writer) {
	t.Helper()
	dir := filepath.Join("..", "..", "smpp", "testdata", "nodesmsc")
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "node not installed (needed for the node-smpp opt-out test)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "smpp", "package.json")); err != nil {
		testenv.Missing(t, "node-smpp not installed: run: npm ci --prefix smpp/testdata/nodesmsc")
	}
	cmd := exec.Command(node, "smsc.js", "0")
	cmd.Dir = dir
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ports := make(chan int, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e struct {
				Event string `json:"event"`
				Port  int    `json:"port"`
			}
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event == "listening" {
				ports <- e.Port
			}
		}
	}()
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	select {
	case p := <-ports:
		return "127.0.0.1:" + strconv.Itoa(p), in
	case <-time.After(15 * time.Second):
		t.Fatal("smsc.js did not start")
	}
	return "", nil
}

// Replies delivered by node-smpp in each keyword form, GSM-7 and UCS-2, put
// their senders on the list through the whole program; a later upload over
// FTP skips them.
func TestOptoutRepliesFromNodeSMPP(t *testing.T) {
	addr, stdin := startNodeSMSC(t)
	c := testConfig(t.TempDir())
	c.SMPP.Addr, c.SMPP.SystemID, c.SMPP.Password = addr, "campaignd", "secret"
	m := MustRunMain(t, c)
	testenv.Eventually(t, 10*time.Second, "bound", m.Sender.Bound)
	gsm := func(s string) []byte { return []byte(s) } // these texts are ASCII: GSM-7 unpacked is the same bytes
	ucs2 := func(s string) []byte {
		var b []byte
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u>>8), byte(u))
		}
		return b
	}
	send := func(from string, coding int, body []byte, tlv bool) {
		line, _ := json.Marshal(map[string]any{"cmd": "mo", "from": from, "to": "28776", "data_coding": coding,
			"hex": hex.EncodeToString(body), "payload": tlv})
		if _, err := fmt.Fprintf(stdin, "%s\n", line); err != nil {
			t.Fatal(err)
		}
	}
	send("525500000001", 0, gsm("BAJA"), false)
	send("5215500000002", 0, gsm("baja."), false)
	send("525500000003", 8, ucs2("Stop por favor"), false)
	send("525500000004", 8, ucs2("no más"), true)
	send("525500000005", 0, gsm("no mas"), false)
	send("525500000006", 0, gsm("Gracias"), false)
	testenv.Eventually(t, 10*time.Second, "every reply kept", func() bool { return len(getReplies(t, m)) == 6 })
	if n := suppressionTotal(t, m); n != 5 {
		t.Fatalf("list holds %d, want 5", n)
	}
	var numbers []string
	for i := 1; i <= 6; i++ {
		numbers = append(numbers, nationalNumber(i))
	}
	upload(t, m.FTP.Addr(), "node.csv", optoutCSV("Hola", "", numbers...))
	b := broadcastOf(t, m, "node.csv")
	if b.Counts.OptedOut != 5 || b.Counts.Total != 1 {
		t.Fatalf("counts %+v, want 5 opted out and 1 message", b.Counts)
	}
	for _, r := range getReplies(t, m) {
		if r.From == "525500000006" && (r.Keyword != "" || !strings.Contains(r.Text, "Gracias")) {
			t.Fatalf("the other reply: %+v", r)
		}
	}
}
