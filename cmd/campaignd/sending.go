package main

import (
	"context"

	"campaignd"
)

func (m *Main) openSending() error                    { return nil }
func (m *Main) closeSending(ctx context.Context) error { return nil }
func (m *Main) admit(b *campaignd.Broadcast) {
	m.Logger.Info("broadcast created", "id", b.ID, "status", b.Status)
}
