// Package phonezone places an E.164 number in the IANA zones
// libphonenumber's timezone mapper gives its prefix, without linking
// libphonenumber (github.com/nyaruka/phonenumbers): that package parses all
// of its metadata in its init (~16 ms here, ~29 ms in a Lambda function),
// which every function paid although only the API validates numbers. This
// package holds a copy of the mapper's table (prefix_to_timezone.gz, the
// library's data/prefix_to_timezone.xml.gz, MIT licence, copied by `go
// generate` from the version in go.mod) and decodes it on first use.
//
// The answers are the library's for every canonical E.164 number (what
// the API stores: internal/contract accepts a number only when
// libphonenumber formats it back to the same string); the tests check the
// copy byte for byte against the library's file and the answers against
// phonenumbers.GetTimezonesForNumber.
package phonezone

//go:generate sh -c "cp \"$(go list -m -f '{{.Dir}}' github.com/nyaruka/phonenumbers)/data/prefix_to_timezone.xml.gz\" prefix_to_timezone.gz && chmod 644 prefix_to_timezone.gz"

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Unknown is what the mapper answers for a number it cannot place.
const Unknown = "Etc/Unknown"

//go:embed prefix_to_timezone.gz
var data []byte

var (
	once    sync.Once
	table   map[int][]string
	maxLen  int
	loadErr error
)

// Zones returns the zones the mapper gives the longest known prefix of
// e164 ("+" and 1–15 digits), as the library does: several for a prefix
// that spans zones, [Unknown] when no prefix is known. It fails when
// e164 is not "+" and digits, or when the table does not decode (never
// with the embedded copy).
func Zones(e164 string) ([]string, error) {
	digits, ok := strings.CutPrefix(e164, "+")
	if !ok || digits == "" || len(digits) > 15 || strings.TrimLeft(digits, "0123456789") != "" {
		return nil, fmt.Errorf("phonezone.Zones: %q is not an E.164 number", e164)
	}
	once.Do(func() { table, maxLen, loadErr = decode(data) })
	if loadErr != nil {
		return nil, loadErr
	}
	for i := min(len(digits), maxLen); i > 0; i-- {
		n, _ := strconv.Atoi(digits[:i])
		if zones, ok := table[n]; ok {
			return zones, nil
		}
	}
	return []string{Unknown}, nil
}

// decode reads the library's serialised map (its loadIntArrayMap format):
// the gzip of a little-endian uint32 length and that many bytes of
// newline-separated values; a uint32 count of mappings; then, per mapping,
// the uvarint difference from the previous key, a byte count of values and
// that many little-endian uint16 indexes into the values.
func decode(gz []byte) (map[int][]string, int, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, 0, fmt.Errorf("phonezone: %w", err)
	}
	r := bufio.NewReader(zr)
	var n uint32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return nil, 0, fmt.Errorf("phonezone: values length: %w", err)
	}
	vb := make([]byte, n)
	if _, err := io.ReadFull(r, vb); err != nil {
		return nil, 0, fmt.Errorf("phonezone: values: %w", err)
	}
	values := strings.Split(string(vb), "\n")
	var count uint32
	if err := binary.Read(r, binary.LittleEndian, &count); err != nil {
		return nil, 0, fmt.Errorf("phonezone: mapping count: %w", err)
	}
	m := make(map[int][]string, count)
	key, maxDigits := 0, 0
	for range count {
		diff, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, 0, fmt.Errorf("phonezone: key: %w", err)
		}
		key += int(diff)
		nv, err := r.ReadByte()
		if err != nil {
			return nil, 0, fmt.Errorf("phonezone: value count: %w", err)
		}
		zones := make([]string, nv)
		for i := range zones {
			var idx uint16
			if err := binary.Read(r, binary.LittleEndian, &idx); err != nil {
				return nil, 0, fmt.Errorf("phonezone: value index: %w", err)
			}
			if int(idx) >= len(values) {
				return nil, 0, errors.New("phonezone: value index out of range")
			}
			zones[i] = values[idx]
		}
		m[key] = zones
		maxDigits = max(maxDigits, len(strconv.Itoa(key)))
	}
	return m, maxDigits, nil
}
