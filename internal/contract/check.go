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
// Anything that is not exactly one JSON value is comms.ErrInvalidJSON, with
// the byte offset of the problem when the decoder knows it. So is a body
// that is not UTF-8 (the decoder would silently turn the bad bytes into
// U+FFFD), a string escape that is half of a surrogate pair (same), an
// object that repeats a key at any depth (a proxy reading the first of two
// keys would see a different request than the one served, which reads the
// last), and a number beyond float64 (see walkTokens). Those name the JSON
// path or byte offset; the decoded value is what json.Decoder with
// UseNumber gives. The messages say what is wrong in JSON's terms, never
// Go's.
func DecodeJSON(body []byte) (any, error) {
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: the body is not valid UTF-8 (first bad byte at offset %d)", comms.ErrInvalidJSON, invalidUTF8At(body))
	}
	if bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
		return nil, fmt.Errorf("%w: the body starts with a byte-order mark (U+FEFF); send JSON without one (RFC 8259 §8.1)", comms.ErrInvalidJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the body is empty", comms.ErrInvalidJSON)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: %s at byte %d", comms.ErrInvalidJSON, syntaxMessage(se), se.Offset)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: the body ends before the JSON value does", comms.ErrInvalidJSON)
		}
		return nil, fmt.Errorf("%w: the body is not one JSON value", comms.ErrInvalidJSON)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: unexpected data after the JSON value at byte %d", comms.ErrInvalidJSON, dec.InputOffset())
	}
	if off, ok := loneSurrogate(body); ok {
		return nil, fmt.Errorf("%w: the \\u escape at byte %d is half of a UTF-16 surrogate pair, which is not a character", comms.ErrInvalidJSON, off)
	}
	if err := walkTokens(body); err != nil {
		return nil, fmt.Errorf("%w: %s", comms.ErrInvalidJSON, err.Error())
	}
	return v, nil
}

// syntaxMessage says what is wrong with the JSON in our words, not the
// decoder's: its texts quote bytes as Go characters ("invalid character
// 'N' looking for beginning of value").
func syntaxMessage(se *json.SyntaxError) string {
	msg := se.Error()
	switch {
	case strings.Contains(msg, "max depth"):
		return "the JSON nests too deeply"
	case strings.Contains(msg, "looking for beginning of value"):
		return "a value was expected (JSON has no NaN, Infinity, undefined, comments or single quotes)"
	case strings.Contains(msg, "looking for beginning of object key string"):
		return "an object key (a string in double quotes) was expected"
	case strings.Contains(msg, "after object key"):
		return `a ":" was expected after an object key`
	case strings.Contains(msg, "after object key:value pair"), strings.Contains(msg, "after array element"):
		return `a "," or a closing bracket was expected`
	case strings.Contains(msg, "in string literal"):
		return "a string holds a raw control character; escape it (\\n, \\t, \\u0000)"
	case strings.Contains(msg, "in string escape code"):
		return "a string has an invalid escape"
	}
	return "the JSON is malformed"
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// loneSurrogate finds a \uD800–\uDFFF escape inside a string of valid JSON
// that is not a high surrogate followed by a low one.
func loneSurrogate(b []byte) (offset int, found bool) {
	inString := false
	for i := 0; i < len(b); i++ {
		switch {
		case !inString:
			inString = b[i] == '"'
		case b[i] == '"':
			inString = false
		case b[i] == '\\' && i+1 < len(b) && b[i+1] != 'u':
			i++
		case b[i] == '\\':
			u, ok := hex4(b, i+2)
			switch {
			case !ok:
			case u >= 0xDC00 && u <= 0xDFFF:
				return i, true
			case u >= 0xD800 && u <= 0xDBFF:
				lo, ok := hex4(b, i+8)
				if !ok || b[i+6] != '\\' || b[i+7] != 'u' || lo < 0xDC00 || lo > 0xDFFF {
					return i, true
				}
				i += 6
			}
			i += 5
		}
	}
	return 0, false
}

func hex4(b []byte, at int) (rune, bool) {
	if at < 2 || at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return rune(n), err == nil
}

// walkTokens walks valid JSON by tokens and reports, by its path
// (payload.to_email, items[2].name), the first key an object repeats or the
// first number beyond a float64's range (1e400: RFC 7493 I-JSON; every
// reader of a stored document, this service's included, decodes numbers
// into float64, so such a number would be accepted now and fail later).
func walkTokens(body []byte) error {
	type frame struct {
		path      string
		object    bool
		keys      map[string]bool
		expectKey bool
		key       string // the member being read
		n         int    // next array index
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF: the body was already decoded once
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			k, _ := tok.(string)
			if top.keys[k] {
				return fmt.Errorf("the key %s appears more than once in its object", keyPath(top.path, k))
			}
			top.keys[k], top.key, top.expectKey = true, k, false
			continue
		}
		p := ""
		switch {
		case top == nil:
		case top.object:
			p, top.expectKey = keyPath(top.path, top.key), true
		default:
			p = index(top.path, top.n)
			top.n++
		}
		if n, ok := tok.(json.Number); ok {
			if _, err := n.Float64(); err != nil {
				return fmt.Errorf("the number %.40s at %s is beyond the range of a 64-bit float (about ±1.8e308)", n, orRoot(p))
			}
		}
		if d, ok := tok.(json.Delim); ok {
			f := &frame{path: p, object: d == '{', expectKey: d == '{'}
			if f.object {
				f.keys = map[string]bool{}
			}
			stack = append(stack, f)
		}
	}
}

// keyPath names member k of the object at path: a.b, or a["odd key"] when
// k is not a plain name.
func keyPath(path, k string) string {
	plain := k != ""
	for _, r := range k {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return join(path, k)
	}
	return path + "[" + strconv.Quote(k) + "]"
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

// The text rule, the one place that says which characters a text field may
// hold. No text field holds a C0 control character (U+0000–U+001F) or DEL
// (U+007F): they are invisible in a subject, a name or a label, NUL ends a
// string in C, and CR/LF split e-mail headers. Multi-line fields
// (html_body, message_body, voice dynamic-variable values) may also hold
// TAB, LF and CR, which HTML reads as white space and an SMS carries as
// line breaks; every other control character is refused there too.
// Everything else is accepted (C1 controls U+0080–U+009F included: they
// are valid UTF-8 and no channel gives them a meaning). Opaque JSON such as
// voice metadata is data, not text, and escaped on the way out, so the rule
// does not apply to its strings.
func controlChar(s string, multiline bool) (r rune, at int, found bool) {
	at = 0
	for _, r := range s {
		at++
		if r < 0x20 || r == 0x7f {
			if multiline && (r == '\t' || r == '\n' || r == '\r') {
				continue
			}
			return r, at, true
		}
	}
	return 0, 0, false
}

// checkChars reports a control character in s under path (see
// controlChar); what names what the string is ("" for the field's value).
func (c *checker) checkChars(path, what, s string, multiline bool) bool {
	r, at, found := controlChar(s, multiline)
	if !found {
		return true
	}
	kind := "control characters"
	if r == '\n' || r == '\r' {
		kind = "line breaks"
	}
	if what != "" {
		what += " "
	}
	c.add(path, "%smust not contain %s (U+%04X at character %d)", what, kind, r, at)
	return false
}

// text accepts a string of minRunes..maxRunes characters that passes the
// text rule; noNewline makes it a single-line field (no TAB, CR or LF
// either), otherwise it is multi-line.
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
		case !c.checkChars(path, "", s, !noNewline):
		case n < minRunes && minRunes == 1:
			c.add(path, "must not be empty")
		case n < minRunes:
			c.add(path, "must be at least %d characters", minRunes)
		case n > maxRunes:
			c.add(path, "must be at most %d characters, got %d", maxRunes, n)
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
			c.add(path, "must be an e-mail address Amazon SES can send to, such as sarah@example.com; this one %s", me.Reason)
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
			p := keyPath(path, k)
			s, ok := m[k].(string)
			switch {
			case !c.checkChars(p, "the key", k, false):
				good = false
			case !ok:
				c.add(p, "must be a string, got %s", typeName(m[k]))
				good = false
			case !c.checkChars(p, "", s, true):
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
