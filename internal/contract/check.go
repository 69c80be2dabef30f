package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/mailaddr"
)

// DecodeJSON parses one JSON value with numbers kept exact (json.Number).
// Anything that is not exactly one JSON value is comms.ErrInvalidJSON, with the
// byte offset of the problem when the decoder knows it.
func DecodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the body is empty", comms.ErrInvalidJSON)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: %s at byte %d", comms.ErrInvalidJSON, se.Error(), se.Offset)
		}
		return nil, fmt.Errorf("%w: %s", comms.ErrInvalidJSON, err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: unexpected data after the JSON value at byte %d", comms.ErrInvalidJSON, dec.InputOffset())
	}
	return v, nil
}

// checker walks a decoded JSON document, collecting every offending field.
type checker struct {
	errs comms.ValidationError
}

func (c *checker) add(path, format string, args ...any) { c.errs.Add(path, format, args...) }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// field validates one member and returns its normalized value (ok false
// when it was reported as invalid).
type field func(c *checker, path string, v any) (any, bool)

// shape describes an object: its known members and which are required.
type shape struct {
	fields   map[string]field
	required []string
}

// object checks that v is an object of shape s and returns the normalized
// members that passed. Unknown members and missing required ones are
// reported; null members are treated as absent.
func (c *checker) object(path string, v any, s shape) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(orRoot(path), "must be a JSON object")
		return nil, false
	}
	out := make(map[string]any, len(m))
	for _, k := range sortedKeys(m) {
		f, known := s.fields[k]
		if !known {
			c.add(join(path, k), "is not a known field")
			continue
		}
		if m[k] == nil {
			continue
		}
		if nv, ok := f(c, join(path, k), m[k]); ok {
			out[k] = nv
		}
	}
	for _, k := range s.required {
		if m[k] == nil {
			c.add(join(path, k), "is required")
		}
	}
	return out, true
}

func orRoot(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// text accepts a string of minRunes..maxRunes characters; noNewline rejects
// CR and LF (header values).
func text(minRunes, maxRunes int, noNewline bool) field {
	return func(c *checker, path string, v any) (any, bool) {
		s, ok := v.(string)
		if !ok {
			c.add(path, "must be a string, got %s", typeName(v))
			return nil, false
		}
		n := utf8.RuneCountInString(s)
		switch {
		case !utf8.ValidString(s):
			c.add(path, "must be valid UTF-8")
		case n < minRunes && minRunes == 1:
			c.add(path, "must not be empty")
		case n < minRunes:
			c.add(path, "must be at least %d characters", minRunes)
		case n > maxRunes:
			c.add(path, "must be at most %d characters, got %d", maxRunes, n)
		case noNewline && strings.ContainsAny(s, "\r\n"):
			c.add(path, "must not contain line breaks")
		default:
			return s, true
		}
		return nil, false
	}
}

func uuidField(c *checker, path string, v any) (any, bool) {
	s, ok := v.(string)
	if !ok {
		c.add(path, "must be a UUID string, got %s", typeName(v))
		return nil, false
	}
	u, ok := comms.UUIDString(s)
	if !ok {
		c.add(path, "must be a UUID such as 3f2b8c1e-5d4a-4e7b-9c61-2a8f0d9e4b17")
		return nil, false
	}
	return u, true
}

// E164 reports whether s is a valid phone number written in E.164
// (+ country code and subscriber number, digits only).
func E164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	n, err := phonenumbers.Parse(s, "")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return false
	}
	return phonenumbers.Format(n, phonenumbers.E164) == s
}

func e164Field(c *checker, path string, v any) (any, bool) {
	s, ok := v.(string)
	if !ok {
		c.add(path, "must be a string, got %s", typeName(v))
		return nil, false
	}
	if !E164(s) {
		c.add(path, "must be a valid phone number in E.164 format, such as +61412345678")
		return nil, false
	}
	return s, true
}

// Email reports whether s is an e-mail address Dispatcher accepts: the
// rule of package mailaddr, which the SES sender and the dev sinks apply too.
func Email(s string) bool { return mailaddr.Valid(s) }

func emailField(c *checker, path string, v any) (any, bool) {
	s, ok := v.(string)
	if !ok {
		c.add(path, "must be a string, got %s", typeName(v))
		return nil, false
	}
	if _, err := mailaddr.ASCII(s); err != nil {
		var me *mailaddr.Error
		if errors.As(err, &me) {
			c.add(path, "must be an e-mail address Amazon SES can send to, such as sarah@example.com: %s", me.Reason)
		} else {
			c.add(path, "must be an e-mail address such as sarah@example.com")
		}
		return nil, false
	}
	return s, true
}

func timezoneField(c *checker, path string, v any) (any, bool) {
	s, ok := v.(string)
	if !ok {
		c.add(path, "must be a string, got %s", typeName(v))
		return nil, false
	}
	if _, err := comms.Timezone(s); err != nil {
		c.add(path, "must be an IANA time zone such as Australia/Sydney")
		return nil, false
	}
	return s, true
}

func boolField(c *checker, path string, v any) (any, bool) {
	b, ok := v.(bool)
	if !ok {
		c.add(path, "must be a boolean, got %s", typeName(v))
	}
	return b, ok
}

// integer accepts a whole number in [lo, hi].
func integer(lo, hi int64) field {
	return func(c *checker, path string, v any) (any, bool) {
		n, ok := v.(json.Number)
		if !ok {
			c.add(path, "must be an integer, got %s", typeName(v))
			return nil, false
		}
		f, err := n.Float64()
		if err != nil || f != math.Trunc(f) {
			c.add(path, "must be an integer")
			return nil, false
		}
		if f < float64(lo) || f > float64(hi) {
			c.add(path, "must be between %d and %d", lo, hi)
			return nil, false
		}
		return json.Number(strconv.FormatInt(int64(f), 10)), true
	}
}

// object of string values (provider dynamic variables).
func stringMap(maxKeys int) field {
	return func(c *checker, path string, v any) (any, bool) {
		m, ok := v.(map[string]any)
		if !ok {
			c.add(path, "must be an object, got %s", typeName(v))
			return nil, false
		}
		if len(m) > maxKeys {
			c.add(path, "must have at most %d keys", maxKeys)
			return nil, false
		}
		good := true
		for _, k := range sortedKeys(m) {
			if _, ok := m[k].(string); !ok {
				c.add(join(path, k), "must be a string, got %s", typeName(m[k]))
				good = false
			}
		}
		return m, good
	}
}

func anyObject(c *checker, path string, v any) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(path, "must be an object, got %s", typeName(v))
	}
	return m, ok
}
