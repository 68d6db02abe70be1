package replies

import "testing"

func TestMatchKeyword(t *testing.T) {
	kws := []string{"BAJA", "STOP", "ALTO", "CANCELAR", "NO MAS"}
	for _, tc := range []struct{ text, want string }{
		{"BAJA", "BAJA"},
		{"baja", "BAJA"},
		{"  Baja. ", "BAJA"},
		{"BAJA por favor", "BAJA"},
		{"Bájà", "BAJA"},
		{"stop", "STOP"},
		{"STOP!!!", "STOP"},
		{"alto", "ALTO"},
		{"Cancelar", "CANCELAR"},
		{"no más", "NO MAS"},
		{"NO  MAS gracias", "NO MAS"},
		{"nomas", "NO MAS"},
		{"No más mensajes", "NO MAS"},
		{"ＳＴＯＰ", "STOP"}, // full-width letters, as some phones send them
		{"bajar", ""},
		{"stopped", ""},
		{"quiero darme de baja", ""},
		{"no", ""},
		{"", ""},
		{"   ", ""},
		{"gracias", ""},
	} {
		if got := MatchKeyword(tc.text, kws); got != tc.want {
			t.Errorf("MatchKeyword(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
	if got := MatchKeyword("baja", nil); got != "" {
		t.Errorf("no keywords configured: got %q", got)
	}
}
