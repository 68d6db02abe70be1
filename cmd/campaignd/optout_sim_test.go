package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"campaignd/internal/testenv"
	"campaignd/smpp"
)

// `campaignd smsc-sim --mo-listen` delivers the replies posted to its hook
// to a bound client, in GSM-7 and UCS-2.
func TestSMSCSimReplyHook(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- smscSim(ctx, []string{"--listen", "127.0.0.1:0", "--mo-listen", "127.0.0.1:0", "--receipt-delay", "10ms"}, out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	smscRe := regexp.MustCompile(`listening on (\S+) `)
	hookRe := regexp.MustCompile(`POST http://(\S+)/mo`)
	testenv.Eventually(t, 10*time.Second, "the simulator's addresses", func() bool { return hookRe.MatchString(out.String()) })
	smscAddr := smscRe.FindStringSubmatch(out.String())[1]
	hook := hookRe.FindStringSubmatch(out.String())[1]

	var mu sync.Mutex
	var got []smpp.MO
	c := smpp.New(smpp.Options{Addr: smscAddr, SystemID: "t", OnMO: func(m smpp.MO) error {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		return nil
	}})
	c.Start(ctx)
	t.Cleanup(func() { c.Close(context.Background()) })
	// Replies reach a bound client; on a loaded machine binding takes a while.
	testenv.Eventually(t, 30*time.Second, "the client bound", c.Bound)
	for _, body := range []string{
		`{"from":"525500000001","to":"28776","text":"BAJA"}`,
		`{"from":"525500000002","to":"28776","text":"no más","data_coding":8}`,
	} {
		resp, err := http.Post("http://"+hook+"/mo", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /mo = %d", resp.StatusCode)
		}
	}
	if resp, _ := http.Post("http://"+hook+"/mo", "application/json", strings.NewReader(`{"text":"x"}`)); resp == nil || resp.StatusCode != 400 {
		t.Fatalf("a reply without a sender was accepted")
	}
	testenv.Eventually(t, 10*time.Second, "both replies", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	mu.Lock()
	defer mu.Unlock()
	texts := map[string]string{}
	for _, m := range got {
		texts[m.From] = m.Text
	}
	if texts["525500000001"] != "BAJA" || texts["525500000002"] != "no más" {
		t.Fatalf("replies %+v", got)
	}
}
