package store

import (
	"strings"
	"testing"

	"campaignd"
)

// TestIsTooLarge: a record over Badger's value limit is refused with an
// error IsTooLarge recognises (retrying cannot help); others are not. It is
// Badger's limit: PostgreSQL takes values up to 1 GB.
func TestIsTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 65 MB value")
	}
	db, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u := &campaignd.Upload{ID: 1, Errors: []campaignd.FileError{{Value: strings.Repeat("v", 65<<20)}}}
	err = db.SaveUpload(u)
	if err == nil || !IsTooLarge(err) {
		t.Fatalf("SaveUpload of a 65 MB record: %v", err)
	}
	if IsTooLarge(nil) || IsTooLarge(campaignd.Errorf(campaignd.EINTERNAL, "disk full")) {
		t.Fatal("IsTooLarge of other errors")
	}
}
