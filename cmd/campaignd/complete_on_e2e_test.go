package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

func TestCompleteOnConfig(t *testing.T) {
	c := DefaultConfig()
	if c.FTP.CompleteOn != "stor" {
		t.Errorf("default ftp.complete_on = %q, want stor", c.FTP.CompleteOn)
	}
	env := map[string]string{"CAMPAIGND_FTP_COMPLETE_ON": "marker"}
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.FTP.CompleteOn != "marker" {
		t.Errorf("CAMPAIGND_FTP_COMPLETE_ON: got %q", c.FTP.CompleteOn)
	}
	c = testConfig(t.TempDir())
	c.FTP.CompleteOn = "close"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ftp.complete_on") {
		t.Errorf("Validate = %v, want an error naming ftp.complete_on", err)
	}
}

// In marker mode through the real Main: a STOR of the file alone records
// nothing; its marker starts ingest (Via MARKER), the result lands in
// processed/ under the file's name and the marker is gone.
func TestMarkerModeEndToEnd(t *testing.T) {
	c := testConfig(t.TempDir())
	c.FTP.CompleteOn = "marker"
	m := MustRunMain(t, c)
	fc := ftpLogin(t, m.FTP.Addr())
	if err := fc.Stor("lote.csv", strings.NewReader(csvFile("", 5))); err != nil {
		t.Fatal(err)
	}
	// OnUpload runs before the 226: had the STOR triggered, it would be recorded now.
	if ups, _, _ := m.DB.Uploads(0, 10); len(ups) != 0 {
		t.Fatalf("a STOR was recorded in marker mode: %+v", ups[0])
	}
	if err := fc.Stor("lote.csv.done", strings.NewReader("")); err != nil {
		t.Fatalf("marker: %v", err)
	}
	var u *campaignd.Upload
	testenv.Eventually(t, 15*time.Second, "upload ingested", func() bool {
		ups, _, _ := m.DB.Uploads(0, 10)
		if len(ups) == 1 && ups[0].Outcome != campaignd.UploadReceived {
			u = ups[0]
			return true
		}
		return false
	})
	if u.Via != campaignd.ViaMarker || u.Path != "/lote.csv" || u.Outcome != campaignd.UploadAccepted ||
		u.ResultPath != "processed/lote.csv" {
		t.Fatalf("upload = %+v", u)
	}
	for _, gone := range []string{"lote.csv", "lote.csv.done"} {
		if fileExists(filepath.Join(jail(m), gone)) {
			t.Errorf("%s left in the jail", gone)
		}
	}
}
