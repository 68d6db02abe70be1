package campaignd

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// Every message rowerrors.go writes with w.T has its Spanish, with the same
// verbs in the same order.
func TestRowErrorsCatalogueComplete(t *testing.T) {
	src, err := os.ReadFile("rowerrors.go")
	if err != nil {
		t.Fatal(err)
	}
	calls := regexp.MustCompile(`w\.T\("((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(string(src), -1)
	if len(calls) < 10 {
		t.Fatalf("only %d messages found: the scan is broken", len(calls))
	}
	verbs := regexp.MustCompile(`%[-+# 0]*\d*(?:\.\d+)?[a-zA-Z%]`)
	for _, c := range calls {
		es, ok := RowErrorsES[c[1]]
		if !ok {
			t.Errorf("no Spanish for %q", c[1])
			continue
		}
		if a, b := verbs.FindAllString(c[1], -1), verbs.FindAllString(es, -1); !slices.Equal(a, b) {
			t.Errorf("%q → %q: verbs %v, want %v", c[1], es, b, a)
		}
	}
}

func TestExplainRowError(t *testing.T) {
	es, en := RowErrorWords(LangES), RowErrorWords(LangEN)
	for _, tc := range []struct {
		name   string
		e      FileError
		es, en string
	}{
		{"short number", FileError{Error: RowInvalidRecipient, Value: "5512 3456"},
			"destinatario inválido: número de 8 dígitos: se esperan 10", "invalid recipient: 8-digit number: 10 are expected"},
		{"duplicate with its line", FileError{Error: RowDuplicate, Value: "5512345678", FirstLine: 14},
			"duplicado de la línea 14: cada número se envía una vez", "duplicate of line 14: each number is sent once"},
		{"duplicate stored before lines", FileError{Error: RowDuplicate, Value: "5512345678"},
			"duplicado: el mismo número está en una línea anterior; cada número se envía una vez", "duplicate: the same number is on an earlier line; each number is sent once"},
		{"too long, detail in the value", FileError{Error: RowTooLong, Value: "7 segments (UCS-2, 420 units), at most 6 allowed (918 GSM-7 or 402 UCS-2 characters)"},
			"mensaje demasiado largo: 7 segmentos (UCS-2, 420 unidades), se permiten 6 como máximo (918 caracteres GSM-7 o 402 UCS-2)",
			"message too long: 7 segments (UCS-2, 420 units), at most 6 allowed (918 GSM-7 or 402 UCS-2 characters)"},
		{"expansion too long", FileError{Error: RowTooLong, Value: "expands to 5000 bytes, more than 6 segments: at most 6 allowed (918 GSM-7 or 402 UCS-2 characters)"},
			"mensaje demasiado largo: se expande a 5000 bytes, más de 6 segmentos: se permiten 6 como máximo (918 caracteres GSM-7 o 402 UCS-2)",
			"message too long: expands to 5000 bytes"},
		{"field count", FileError{Error: RowFieldCount, Value: "2 fields, the header has 3"},
			"número de campos incorrecto: 2 campos; el encabezado tiene 3", "wrong number of fields: 2 fields, the header has 3"},
		{"file error by pattern", FileError{Error: "3 of 10 rows are invalid (30.0%), more than the 10% allowed"},
			"3 de 10 filas son inválidas (30.0 %), más del 10 % permitido", "3 of 10 rows are invalid (30.0%), more than the 10% allowed"},
		{"validity column", FileError{Error: `validity "3 semanas" is not a duration from 10 minutes to 15 days (write e.g. 90m, 48h or 2d)`},
			`vigencia "3 semanas": no es una duración de 10 minutos a 15 días (escribe p. ej. 90m, 48h o 2d)`, `validity "3 semanas" is not a duration`},
		{"unknown passes", FileError{Error: "something new"}, "something new", "something new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExplainRowError(es, tc.e); got != tc.es {
				t.Errorf("es = %q, want %q", got, tc.es)
			}
			if got := ExplainRowError(en, tc.e); got[:min(len(got), len(tc.en))] != tc.en {
				t.Errorf("en = %q, want %q", got, tc.en)
			}
		})
	}
}
