package smpp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

// tcpProxy forwards connections to target and can cut one of them, to drop a single bind.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*proxied
}

type proxied struct {
	client, server net.Conn
	up, down       atomic.Int64 // bytes client->server, server->client
}

func startProxy(tb testing.TB, target string) *tcpProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			pc := &proxied{client: c, server: s}
			p.mu.Lock()
			p.conns = append(p.conns, pc)
			p.mu.Unlock()
			go pipe(s, c, &pc.up)
			go pipe(c, s, &pc.down)
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		for _, c := range p.all() {
			c.cut()
		}
	})
	return p
}

func pipe(dst, src net.Conn, n *atomic.Int64) {
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			n.Add(int64(k))
			if _, werr := dst.Write(buf[:k]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

func (pc *proxied) cut() { pc.client.Close(); pc.server.Close() }

func (p *tcpProxy) all() []*proxied {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*proxied(nil), p.conns...)
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func boundCount(c *Client) (bound, all int) {
	for _, b := range c.Binds() {
		all++
		if b.Bound {
			bound++
		}
	}
	return bound, all
}

// TestBindsShareLoadAndSurviveOneDrop runs 4 binds (transceivers, then transmitter + receiver pairs)
// against the simulator through a proxy, cuts one connection mid-run and checks: every bind carried
// submits, no connection had more than its window in flight, the others went on sending while the cut
// one was down, it was replaced, every message was accepted once (duplicates only from the submits in
// flight on the cut connection) and every accepted id got its receipt, whichever bind it came on.
func TestBindsShareLoadAndSurviveOneDrop(t *testing.T) {
	for _, mode := range []string{BindTransceiver, BindPair} {
		t.Run(mode, func(t *testing.T) {
			const binds, window, total = 4, 5, 1500
			sim := MustOpenSim(t, SimOptions{DeliveredPercent: 100, ReceiptDelay: 20 * time.Millisecond,
				ResponseDelay: 2 * time.Millisecond, TrackDests: true})
			px := startProxy(t, sim.Addr())
			var rmu sync.Mutex
			got := map[string]int{}
			c := New(Options{Addr: px.addr(), SystemID: "campaignd", Password: "demo", Bind: mode,
				Binds: binds, Window: window, ResponseTimeout: 3 * time.Second,
				OnReceipt: func(r campaignd.Receipt) error {
					rmu.Lock()
					got[r.MessageID]++
					rmu.Unlock()
					return nil
				}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c.Start(ctx)
			defer c.Close(context.Background())
			links := binds
			if mode == BindPair {
				links = 2 * binds
			}
			testenv.Eventually(t, 20*time.Second, "every bind up", func() bool {
				b, all := boundCount(c)
				return b == links && all == links
			})

			var done atomic.Int64
			ids := make([]string, total)
			next := atomic.Int64{}
			var wg sync.WaitGroup
			errs := make(chan error, 1)
			for range 4 * binds * window {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= total {
							return
						}
						for attempt := 0; ; attempt++ {
							id, err := c.Submit(ctx, campaignd.OutMessage{Source: "Payback", Dest: fmt.Sprintf("5255%08d", i), Text: "hola"})
							if err == nil {
								ids[i] = id[0]
								done.Add(1)
								break
							}
							if !errors.Is(err, campaignd.ErrNotBound) && !errors.Is(err, campaignd.ErrSubmitTimeout) || attempt > 50 {
								select {
								case errs <- fmt.Errorf("message %d: %w", i, err):
								default:
								}
								return
							}
						}
					}
				}()
			}

			testenv.Eventually(t, 30*time.Second, "a third sent", func() bool { return done.Load() >= total/3 })
			conns := px.all()
			if len(conns) != links {
				t.Fatalf("%d connections, want %d", len(conns), links)
			}
			victim := conns[0] // a transceiver, or the transmitter of the first pair
			victim.cut()
			testenv.Eventually(t, 5*time.Second, "the cut bind seen down", func() bool {
				b, _ := boundCount(c)
				return b == links-1
			})
			before := done.Load()
			time.Sleep(300 * time.Millisecond) // reconnect backoff is 1 s: it is still down
			during := done.Load() - before
			if b, _ := boundCount(c); b != links-1 {
				t.Logf("the cut bind came back within 300 ms (bound %d of %d)", b, links)
			}
			if during == 0 {
				t.Fatal("no submit completed on the other binds while one was down")
			}
			wg.Wait()
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			testenv.Eventually(t, 20*time.Second, "the cut bind replaced", func() bool {
				b, _ := boundCount(c)
				return b == links && len(px.all()) == links+1
			})
			for i, pc := range conns {
				// each transceiver carried a share of 1,500 submits (~60 bytes each)
				if mode == BindTransceiver && pc != victim && pc.up.Load() < 2000 {
					t.Errorf("connection %d carried only %d bytes", i, pc.up.Load())
				}
			}
			st := sim.Stats()
			if st.MaxOutstanding > window {
				t.Errorf("%d submits in flight on one connection, window %d", st.MaxOutstanding, window)
			}
			if len(st.PerDest) != total {
				t.Fatalf("%d recipients got a message, want %d", len(st.PerDest), total)
			}
			dups := 0
			for _, n := range st.PerDest {
				dups += n - 1
			}
			if dups > window {
				t.Fatalf("%d duplicates after one cut bind, bar %d", dups, window)
			}
			testenv.Eventually(t, 20*time.Second, "a receipt for every accepted id", func() bool {
				rmu.Lock()
				defer rmu.Unlock()
				for _, id := range ids {
					if got[id] == 0 {
						return false
					}
				}
				return true
			})
			t.Logf("%s: %d during the outage, %d duplicates, %d connections", mode, during, dups, len(px.all()))
		})
	}
}
