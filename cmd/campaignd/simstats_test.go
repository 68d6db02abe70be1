package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/smpp"
)

// `campaignd smsc-sim --stats-listen` serves its counters with the submits
// per destination, so a test running it as a process can count duplicates.
func TestSMSCSimStats(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- smscSim(ctx, []string{"--listen", "127.0.0.1:0", "--stats-listen", "127.0.0.1:0", "--receipt-delay", "10ms"}, out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	smscRe := regexp.MustCompile(`listening on (\S+) `)
	testenv.Eventually(t, 10*time.Second, "the simulator's addresses", func() bool { return simStatsLine.MatchString(out.String()) })
	smscAddr := smscRe.FindStringSubmatch(out.String())[1]
	statsURL := simStatsLine.FindStringSubmatch(out.String())[1]

	c := smpp.New(smpp.Options{Addr: smscAddr, SystemID: "t"})
	c.Start(ctx)
	t.Cleanup(func() { c.Close(context.Background()) })
	testenv.Wait(t, "the bind", c.Bound)
	for _, dest := range []string{"525500000001", "525500000002", "525500000001"} {
		if _, err := c.Submit(ctx, campaignd.OutMessage{Source: "28776", Dest: dest, Text: "hola", NoReceipt: true}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(statsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st smpp.SimStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Submits != 3 || st.PerDest["525500000001"] != 2 || st.PerDest["525500000002"] != 1 || duplicates(st) != 1 {
		t.Fatalf("stats %+v; want 3 submits, 2 to ...001 and 1 to ...002", st)
	}
}
