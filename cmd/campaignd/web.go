package main

import "context"

func (m *Main) openWeb() error                    { return nil }
func (m *Main) closeWeb(ctx context.Context) error { return nil }

// WebAddr returns the bound console address.
func (m *Main) WebAddr() string { return "" }
