package main

import (
	"path/filepath"
	"testing"
	"time"

	"campaignd"
	"campaignd/store"
)

func TestUploadBecomesBroadcast(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	for _, tt := range []struct {
		name, date string
		want       campaignd.Status
	}{
		{"pending.csv", "", campaignd.StatusPending},
		{"past.csv", "2020-01-01 10:00", campaignd.StatusSending},
		{"future.csv", time.Now().Add(48 * time.Hour).Format("2006-01-02 15:04"), campaignd.StatusScheduled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			upload(t, m.FTP.Addr(), tt.name, csvFile(tt.date, 3))
			var b *campaignd.Broadcast
			waitFor(t, 5*time.Second, "broadcast", func() bool {
				list, _, _ := m.DB.Broadcasts(store.BroadcastFilter{})
				for _, x := range list {
					if x.FileName == tt.name {
						b = x
						return true
					}
				}
				return false
			})
			if b.Counts.Total != 3 || b.Name != "Prueba" {
				t.Fatalf("broadcast = %+v", b)
			}
			if tt.want != campaignd.StatusSending && b.Status != tt.want {
				t.Fatalf("status = %s, want %s", b.Status, tt.want)
			}
			if tt.want == campaignd.StatusSending && b.Status != campaignd.StatusSending && b.Status != campaignd.StatusCompleted {
				t.Fatalf("status = %s, want sending or completed", b.Status)
			}
			waitFor(t, 5*time.Second, "processed file", func() bool {
				return fileExists(filepath.Join(jail(m), "processed", tt.name))
			})
		})
	}
}
