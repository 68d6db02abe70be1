package campaignd

import (
	"strconv"
	"strings"
	"time"
)

// The bounds of a broadcast's validity period (seed 004): how long the SMSC
// keeps trying to deliver a message before it expires (EXPIRED).
const (
	MinValidity = 10 * time.Minute
	MaxValidity = 15 * 24 * time.Hour
)

// ValidityHint is how a validity period is written, for messages.
const ValidityHint = "90m, 48h, 2d or 1d12h"

// ParseValidity reads a validity period as people write it: whole numbers
// with the units d (days), h, m and s, largest first ("2d", "36h", "90m",
// "1d12h"), or any Go duration ("48h0m0s"). Spaces are ignored and units
// may be upper case. It returns an EINVALID error for a value that cannot
// be read or is outside MinValidity–MaxValidity.
func ParseValidity(s string) (time.Duration, error) {
	v := strings.ToLower(strings.Join(strings.Fields(s), ""))
	d, ok := parseDays(v)
	if !ok {
		return 0, Errorf(EINVALID, "Invalid validity %q: write a duration such as %s.", s, ValidityHint)
	}
	if err := CheckValidity(d); err != nil {
		return 0, err
	}
	return d, nil
}

// parseDays reads an optional leading "<n>d" and the rest as a Go duration.
func parseDays(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var days time.Duration
	if i := strings.IndexByte(v, 'd'); i >= 0 {
		n, err := strconv.ParseUint(v[:i], 10, 16)
		if err != nil {
			return 0, false
		}
		days, v = time.Duration(n)*24*time.Hour, v[i+1:]
		if v == "" {
			return days, true
		}
	}
	if v[0] < '0' || v[0] > '9' { // no sign, no bare unit
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, false
	}
	return days + d, true
}

// CheckValidity returns an EINVALID error when d is outside
// MinValidity–MaxValidity.
func CheckValidity(d time.Duration) error {
	if d < MinValidity || d > MaxValidity {
		return Errorf(EINVALID, "Validity %s is out of bounds: choose between 10 minutes (10m) and 15 days (15d).", FormatValidity(d))
	}
	return nil
}

// FormatValidity writes d in the form ParseValidity reads, with days, hours,
// minutes and seconds ("2d", "1d12h", "1h30m"); 0 is "0m".
func FormatValidity(d time.Duration) string {
	if d == 0 {
		return "0m"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	d = d.Round(time.Second)
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}

// ValidityOr is the broadcast's validity period: its own, else def (the
// configured smpp.validity).
func (b *Broadcast) ValidityOr(def time.Duration) time.Duration {
	if b.Validity > 0 {
		return b.Validity
	}
	return def
}
