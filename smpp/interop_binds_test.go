package smpp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

// sameID compares a submit_sm_resp id with a receipt's id up to the free normalisations (case,
// leading zeros).
func sameID(a, b string) bool {
	return strings.EqualFold(strings.TrimLeft(strings.TrimSpace(a), "0"), strings.TrimLeft(strings.TrimSpace(b), "0"))
}

// TestInteropNodeSMPPBinds runs 4 binds against node-smpp's server (transceivers, then pairs): the
// peer sees 4 (or 8) binds, submits spread over the 4 submitting sessions, one connection is cut
// mid-run and replaced while the others go on, and every id Submit returned gets its receipt.
func TestInteropNodeSMPPBinds(t *testing.T) {
	node := lookNodeSMSC(t)
	for _, mode := range []string{BindTransceiver, BindPair} {
		t.Run(mode, func(t *testing.T) {
			const binds, window, total = 4, 3, 200
			p := startNodePeer(t, node, 0)
			px := startProxy(t, p.addr)
			var rmu sync.Mutex
			var got []string
			c := New(Options{Addr: px.addr(), SystemID: nodeSMSCSystemID, Password: nodeSMSCPassword, Bind: mode,
				Binds: binds, Window: window, ResponseTimeout: 3 * time.Second,
				OnReceipt: func(r campaignd.Receipt) error {
					rmu.Lock()
					got = append(got, r.MessageID)
					rmu.Unlock()
					return nil
				}})
			c.Start(context.Background())
			defer c.Close(context.Background())
			links := binds
			if mode == BindPair {
				links = 2 * binds
			}
			testenv.Wait(t, "every bind up", func() bool { b, _ := boundCount(c); return b == links })
			if n := len(p.all("bind")); n != links {
				t.Fatalf("peer saw %d binds, want %d", n, links)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ids := make([]string, total)
			send := func(from, to int) {
				var wg sync.WaitGroup
				errs := make(chan error, to-from)
				for i := from; i < to; i++ {
					wg.Go(func() {
						for attempt := 0; ; attempt++ {
							id, err := c.Submit(ctx, campaignd.OutMessage{Source: "Shop", Dest: fmt.Sprintf("3461%07d", i), Text: fmt.Sprintf("binds %d", i)})
							if err == nil {
								ids[i] = id[0]
								return
							}
							if !errors.Is(err, campaignd.ErrNotBound) && !errors.Is(err, campaignd.ErrSubmitTimeout) || attempt > 20 {
								errs <- fmt.Errorf("message %d: %w", i, err)
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
			}
			send(0, total/2)
			sessions := map[int]bool{}
			for _, e := range p.all("submit") {
				sessions[e.Session] = true
			}
			if len(sessions) != binds {
				t.Fatalf("submits on %d peer sessions, want %d", len(sessions), binds)
			}
			// Cut a submitting connection that is not the peer's receipt target (it sends receipts to
			// the newest session that can receive, and does not resend those lost with a connection).
			var victim *proxied
			for _, pc := range px.all() {
				if pc.up.Load() > pc.down.Load() && (mode == BindPair || victim == nil) {
					victim = pc
					break
				}
			}
			if victim == nil {
				t.Fatal("no submitting connection found")
			}
			victim.cut()
			testenv.Wait(t, "the cut bind seen down", func() bool { b, _ := boundCount(c); return b == links-1 })
			send(total/2, total)
			testenv.Wait(t, "the cut bind replaced", func() bool { b, _ := boundCount(c); return b == links && len(p.all("bind")) == links+1 })
			testenv.Wait(t, "a receipt for every id", func() bool {
				rmu.Lock()
				defer rmu.Unlock()
				for _, id := range ids {
					found := false
					for _, r := range got {
						if sameID(r, id) {
							found = true
							break
						}
					}
					if !found {
						return false
					}
				}
				return true
			})
		})
	}
}
