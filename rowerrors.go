package campaignd

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Row and file errors are written in English by ingest (the stable kinds
// of upload.go, and file errors as sentences) and stored so. They are read
// in a language twice: by the console, for its user, and by ingest, for
// <name>.errors.csv (ingest.language). Both use the words below, so the
// two never drift apart.

// Languages of row and file errors (and of the console).
const (
	LangES = "es"
	LangEN = "en"
)

// Words translates messages into one language: T a message of this
// package (a format with args, as fmt.Sprintf), Msg a message made
// elsewhere (a row-error kind, a file error), exactly or by pattern. The
// console's locale is one; RowErrorWords gives one without the console.
type Words interface {
	T(key string, args ...any) string
	Msg(s string) string
}

// ExplainRowError turns a row or file error into a reason its author can
// act on, in w's language: the stable kind ingest wrote, and why, read from
// the value (the rules are those of pipeline/ingest/recipient.go).
func ExplainRowError(w Words, e FileError) string {
	if e.Error == RowDuplicate && e.FirstLine > 0 {
		return w.T("duplicate of line %d: each number is sent once", e.FirstLine)
	}
	kind := w.Msg(e.Error)
	var why string
	switch e.Error {
	case RowInvalidRecipient:
		why = recipientReason(w, e.Value)
	case RowDuplicate:
		why = w.T("the same number is on an earlier line; each number is sent once")
	case RowEmptyMessage:
		why = w.T("the message cell is empty")
	case RowOptedOut:
		why = w.T("the number is on the opt-out list")
	case RowFieldCount, RowTooLong:
		why = w.Msg(e.Value) // ingest wrote the detail there
	}
	if why == "" {
		return kind
	}
	return kind + ": " + why
}

func recipientReason(w Words, raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return w.T("the cell is empty")
	}
	n, plus := 0, false
	for i, c := range raw {
		switch {
		case c >= '0' && c <= '9':
			n++
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		case c == '+' && n == 0 && !plus:
			plus = true
		default:
			if i == 0 && c == '\'' {
				continue
			}
			r, _ := utf8.DecodeRuneInString(raw[i:])
			return w.T("it contains “%s”: write only digits (spaces, dashes, dots and parentheses may separate them)", string(r))
		}
	}
	digits := strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return c
		}
		return -1
	}, raw)
	switch {
	case plus && strings.HasPrefix(digits, "52"):
		return w.T("+52 must be followed by 10 digits, not %d", n-2)
	case plus:
		return w.T("a number outside Mexico (+%s): its country is not allowed, or the number is not valid there", digits[:min(3, len(digits))])
	case n < 10:
		return w.T("%d-digit number: 10 are expected", n)
	case n > 10:
		return w.T("%d-digit number: 10 are expected, or 52 and 10", n)
	}
	return w.T("not a Mexican mobile number")
}

// RowErrorWords returns the words of row and file errors in lang ("es" or
// "en"; anything else is English), for writers without the console.
func RowErrorWords(lang string) Words { return rowWords{es: lang == LangES} }

type rowWords struct{ es bool }

func (w rowWords) T(key string, args ...any) string {
	if w.es {
		if v, ok := RowErrorsES[key]; ok {
			key = v
		}
	}
	if len(args) == 0 {
		return key
	}
	return fmt.Sprintf(key, args...)
}

func (w rowWords) Msg(s string) string {
	if !w.es || s == "" {
		return s
	}
	if v, ok := TranslateRowError(s, w.Msg); ok {
		return v
	}
	return s
}

// TranslateRowError gives the Spanish of a row-error kind or a file error
// ingest writes, exactly or by one of RowErrorPatternsES (whose groups are
// passed through msg, to translate known words in them).
func TranslateRowError(s string, msg func(string) string) (string, bool) {
	if v, ok := RowErrorsES[s]; ok {
		return v, true
	}
	for _, p := range RowErrorPatternsES {
		if m := p.Re.FindStringSubmatch(s); m != nil {
			args := make([]any, 0, len(m)-1)
			for _, g := range m[1:] {
				args = append(args, msg(g))
			}
			return fmt.Sprintf(p.ES, args...), true
		}
	}
	return "", false
}

// RowErrorsES is the Spanish (es-MX) of row-error kinds, their reasons and
// the file errors ingest writes: English → Spanish. The console's
// catalogue includes it; the verbs of a translation are those of its key.
var RowErrorsES = map[string]string{
	// Kinds.
	RowInvalidRecipient: "destinatario inválido",
	RowDuplicate:        "duplicado",
	RowEmptyMessage:     "mensaje vacío",
	RowTooLong:          "mensaje demasiado largo",
	RowFieldCount:       "número de campos incorrecto",
	RowOptedOut:         "dado de baja",

	// Reasons.
	"duplicate of line %d: each number is sent once":                  "duplicado de la línea %d: cada número se envía una vez",
	"the same number is on an earlier line; each number is sent once": "el mismo número está en una línea anterior; cada número se envía una vez",
	"the message cell is empty":                                       "la celda del mensaje está vacía",
	"the number is on the opt-out list":                               "el número está en la lista de bajas",
	"the cell is empty":                                               "la celda está vacía",
	"it contains “%s”: write only digits (spaces, dashes, dots and parentheses may separate them)": "contiene “%s”: escribe solo dígitos (se permiten espacios, guiones, puntos y paréntesis entre ellos)",
	"+52 must be followed by 10 digits, not %d":                                                    "+52 debe ir seguido de 10 dígitos, no de %d",
	"a number outside Mexico (+%s): its country is not allowed, or the number is not valid there":  "un número fuera de México (+%s): su país no está permitido o el número no es válido allí",
	"%d-digit number: 10 are expected":                                                             "número de %d dígitos: se esperan 10",
	"%d-digit number: 10 are expected, or 52 and 10":                                               "número de %d dígitos: se esperan 10, o 52 y 10",
	"not a Mexican mobile number":                                                                  "no es un número móvil de México",

	// File errors.
	"empty file":                            "archivo vacío",
	"no header row: the file holds no text": "sin fila de encabezado: el archivo no contiene texto",
	"no header row: line 1 looks like data (the first line must name the columns)":                                                          "sin fila de encabezado: la línea 1 parece de datos (la primera línea debe nombrar las columnas)",
	"no recipient column (name one of: recipient, phone, mobile, msisdn, number, telefono, celular, movil)":                                 "sin columna de destinatario (nómbrala con una de: recipient, phone, mobile, msisdn, number, telefono, celular, movil)",
	"no message column (name one of: message, text, sms, mensaje, texto)":                                                                   "sin columna de mensaje (nómbrala con una de: message, text, sms, mensaje, texto)",
	"not a text file (NUL bytes found); save it as CSV, UTF-8 or Windows-1252":                                                              "no es un archivo de texto (tiene bytes NUL); guárdalo como CSV, UTF-8 o Windows-1252",
	"no valid row: the file has a header but no data rows":                                                                                  "ninguna fila válida: el archivo tiene encabezado pero no filas de datos",
	"the uploaded file was removed before it could be ingested":                                                                             "el archivo cargado se eliminó antes de poder procesarlo",
	"the file name is too long to be stored with its result; use a shorter name":                                                            "el nombre del archivo es demasiado largo para guardarlo con su resultado; usa un nombre más corto",
	"the result folders processed/ and rejected/ cannot be used: a file of that name is in the way; remove or rename it, then upload again": "no se pueden usar las carpetas de resultados processed/ y rejected/: un archivo con ese nombre estorba; elimínalo o cámbiale el nombre y vuelve a cargar",
	"the file name cannot be used on the server; rename the file and upload it again":                                                       "el nombre del archivo no se puede usar en el servidor; cámbialo y vuelve a cargar el archivo",
	"the file's result is too large to be recorded; split the file":                                                                         "el resultado del archivo es demasiado grande para registrarlo; divide el archivo",
	"not a text file (NUL bytes found); save it as CSV or text, one number a line":                                                          "no es un archivo de texto (tiene bytes NUL); guárdalo como CSV o texto, un número por línea",
	"truncated upload: the last line has no line end; upload the whole file again":                                                          "carga truncada: la última línea no tiene fin de línea; vuelve a cargar el archivo completo",
	"no numbers: the file holds no data lines":                                                                                              "sin números: el archivo no tiene líneas de datos",
	"empty sender: use a numeric short code (at most 15 digits) or an alphanumeric sender (at most 11 GSM-7 characters)":                    "remitente vacío: usa un código corto numérico (15 dígitos como máximo) o un remitente alfanumérico (11 caracteres GSM-7 como máximo)",
	// Column names in header errors.
	"recipient": "destinatario", "message": "mensaje", "member id": "id de socio", "date": "fecha",
	"campaign name": "nombre de campaña", "sender": "remitente", "validity": "vigencia",
	// The reasons encoding/csv gives for broken quoting.
	`bare " in non-quoted field`:              `comilla " suelta en un campo sin comillas`,
	`extraneous or missing " in quoted field`: `comilla " de más o de menos en un campo entre comillas`,
}

// MessagePattern translates a family of messages made with a format: the
// groups of Re fill ES.
type MessagePattern struct {
	Re *regexp.Regexp
	ES string
}

// RowErrorPatternsES translate the file errors ingest makes with a format.
var RowErrorPatternsES = []MessagePattern{
	{regexp.MustCompile(`^no valid row: all (\d+) rows have errors$`), "ninguna fila válida: las %s filas tienen errores"},
	{regexp.MustCompile(`^(\d+) of (\d+) rows are invalid \(([\d.]+)%\), more than the (\d+)% allowed$`), "%s de %s filas son inválidas (%s %%), más del %s %% permitido"},
	{regexp.MustCompile(`^more than (\d+) rows$`), "más de %s filas"},
	{regexp.MustCompile(`^(\d+) fields, the header has (\d+)$`), "%s campos; el encabezado tiene %s"},
	{regexp.MustCompile(`^expands to (\d+) bytes, more than (\d+) segments: at most (\d+) allowed \((\d+) GSM-7 or (\d+) UCS-2 characters\)$`), "se expande a %s bytes, más de %s segmentos: se permiten %s como máximo (%s caracteres GSM-7 o %s UCS-2)"},
	{regexp.MustCompile(`^(\d+) segments \(([\w-]+), (\d+) units\), at most (\d+) allowed \((\d+) GSM-7 or (\d+) UCS-2 characters\)$`), "%s segmentos (%s, %s unidades), se permiten %s como máximo (%s caracteres GSM-7 o %s UCS-2)"},
	{regexp.MustCompile(`^the file is over the size limit of (\d+) bytes$`), "el archivo pasa del límite de %s bytes"},
	{regexp.MustCompile(`^the same file \(SHA-256 (\w+)\) was already accepted as broadcast (\d+)$`), "el mismo archivo (SHA-256 %s) ya se aceptó como la campaña %s"},
	{regexp.MustCompile(`^and (\d+) more row errors not listed \((\d+) in all\)$`), "y %s errores de fila más sin listar (%s en total)"},
	{regexp.MustCompile(`^columns (".*") and (".*") are both the (.+) column$`), "las columnas %s y %s son ambas la columna de %s"},
	{regexp.MustCompile(`^column (".*") appears twice$`), "la columna %s aparece dos veces"},
	{regexp.MustCompile(`^no valid number: all (\d+) lines are invalid$`), "ningún número válido: las %s líneas son inválidas"},
	{regexp.MustCompile(`^ingest failed (\d+) times; last error: (.*)$`), "el procesamiento falló %s veces; último error: %s"},
	{regexp.MustCompile(`^truncated upload: a quoted field opened on line (\d+) is still open at the end of the file \(the transfer may have been cut; upload the whole file again\)$`), "carga truncada: un campo entre comillas abierto en la línea %s sigue abierto al final del archivo (la transferencia pudo cortarse; vuelve a cargar el archivo completo)"},
	{regexp.MustCompile(`^truncated upload: the last line \((\d+)\) has no line end \(the transfer may have been cut; upload the whole file again, ending with a line break\)$`), "carga truncada: la última línea (%s) no tiene fin de línea (la transferencia pudo cortarse; vuelve a cargar el archivo completo, terminado en un salto de línea)"},
	{regexp.MustCompile(`^a field of the record starting on line (\d+) is longer than (\d+) bytes \(the limit for one field\)$`), "un campo del registro que empieza en la línea %s mide más de %s bytes (el límite de un campo)"},
	{regexp.MustCompile(`^the record starting on line (\d+) is longer than (\d+) bytes \(the limit for one record\)$`), "el registro que empieza en la línea %s mide más de %s bytes (el límite de un registro)"},
	{regexp.MustCompile(`^broken CSV quoting: (.+) \(field starts on line (\d+), error on line (\d+)\)$`), "comillas del CSV rotas: %s (el campo empieza en la línea %s, el error está en la línea %s)"},
	{regexp.MustCompile(`^broken CSV quoting: (.+)$`), "comillas del CSV rotas: %s"},
	{regexp.MustCompile(`^date too far ahead: The date (.+) is more than a year ahead\. A file may be dated at most 366 days ahead; check the year\.$`), "fecha demasiado lejana: la fecha %s está a más de un año. Un archivo puede fecharse a 366 días como máximo; revisa el año."},
	{regexp.MustCompile(`^sender (".*") has (\d+) digits: a numeric sender has at most 15$`), "el remitente %s tiene %s dígitos: un remitente numérico tiene 15 como máximo"},
	{regexp.MustCompile(`^sender (".*") contains a control character: an alphanumeric sender has at most 11 GSM-7 characters$`), "el remitente %s contiene un carácter de control: un remitente alfanumérico tiene 11 caracteres GSM-7 como máximo"},
	{regexp.MustCompile(`^sender (".*") has characters outside GSM-7: an alphanumeric sender has at most 11 GSM-7 characters \(no accents but é, è, ñ, ü…\)$`), "el remitente %s tiene caracteres fuera de GSM-7: un remitente alfanumérico tiene 11 caracteres GSM-7 como máximo (sin acentos salvo é, è, ñ, ü…)"},
	{regexp.MustCompile(`^sender (".*") is (\d+) GSM-7 characters long: an alphanumeric sender has at most 11 \(a numeric short code at most 15 digits\)$`), "el remitente %s mide %s caracteres GSM-7: un remitente alfanumérico tiene 11 como máximo (un código corto numérico, 15 dígitos)"},
	{regexp.MustCompile(`^unparseable date (".*") \(use e\.g\. .*\)$`), "fecha ilegible %s (usa p. ej. 31/12/2026 15:04 o 2026-12-31 15:04)"},
	{regexp.MustCompile(`^validity (".*") is not a duration from 10 minutes to 15 days \(write e\.g\. 90m, 48h or 2d\)$`), "vigencia %s: no es una duración de 10 minutos a 15 días (escribe p. ej. 90m, 48h o 2d)"},
	{regexp.MustCompile(`^(.+) differs between rows: line (\d+) has none, line (\d+) has (".*") \(every row must carry the same value, or every row none\)$`), "%s cambia entre filas: la línea %s no tiene valor y la línea %s tiene %s (todas las filas deben llevar el mismo valor, o ninguna)"},
	{regexp.MustCompile(`^(.+) differs between rows: line (\d+) has (".*"), line (\d+) has none \(every row must carry the same value, or every row none\)$`), "%s cambia entre filas: la línea %s tiene %s y la línea %s no tiene valor (todas las filas deben llevar el mismo valor, o ninguna)"},
	{regexp.MustCompile(`^(.+) differs between rows: line (\d+) has (".*"), line (\d+) has (".*")$`), "%s cambia entre filas: la línea %s tiene %s y la línea %s tiene %s"},
}
