package phonezone

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/testrand"
	"github.com/nyaruka/phonenumbers"
)

// The copy is the library's file of the version go.mod requires (run `go
// generate ./internal/phonezone/` after upgrading it).
func TestCopyMatchesTheLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/nyaruka/phonenumbers").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	lib, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "data", "prefix_to_timezone.xml.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(lib, data) {
		t.Fatal("prefix_to_timezone.gz differs from the library's data/prefix_to_timezone.xml.gz: run go generate ./internal/phonezone/")
	}
}

// libZones is what internal/comms asked the library before this package.
func libZones(t *testing.T, e164 string) []string {
	t.Helper()
	n, err := phonenumbers.Parse(e164, "")
	if err != nil {
		t.Fatalf("phonenumbers.Parse(%q): %v", e164, err)
	}
	z, err := phonenumbers.GetTimezonesForNumber(n)
	if err != nil {
		t.Fatalf("GetTimezonesForNumber(%q): %v", e164, err)
	}
	return z
}

// Every prefix of the table, and random valid numbers of every region,
// get the library's answer.
func TestZonesAreTheLibrarys(t *testing.T) {
	if _, err := Zones("+1"); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for key := range table {
		p := "+" + strconv.Itoa(key)
		got, err := Zones(p)
		if err != nil {
			t.Fatal(err)
		}
		want, err := phonenumbers.GetTimezonesForPrefix(p)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Zones(%s) = %v, the library says %v", p, got, want)
		}
		checked++
	}
	if checked < 1000 {
		t.Fatalf("only %d prefixes in the table", checked)
	}
	rng := testrand.New(t)
	for region := range phonenumbers.GetSupportedRegions() {
		if phonenumbers.GetExampleNumberForType(region, phonenumbers.MOBILE) == nil {
			continue
		}
		for range 3 {
			num := rng.PhoneNumber(region)
			got, err := Zones(num)
			if err != nil {
				t.Fatal(err)
			}
			if want := libZones(t, num); !slices.Equal(got, want) {
				t.Fatalf("Zones(%s) = %v, the library says %v", num, got, want)
			}
		}
	}
	for _, num := range []string{"+12085550123", "+442071838750", "+61291234567", "+8613800138000"} {
		got, _ := Zones(num)
		if want := libZones(t, num); !slices.Equal(got, want) {
			t.Fatalf("Zones(%s) = %v, the library says %v", num, got, want)
		}
	}
}

func TestZonesRefusesWhatIsNotE164(t *testing.T) {
	for _, s := range []string{"", "+", "12085550123", "+1 208 555 0123", "+1208555012345678", "+12a"} {
		if z, err := Zones(s); err == nil {
			t.Errorf("Zones(%q) = %v, want an error", s, z)
		}
	}
}
