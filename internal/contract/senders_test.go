package contract_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
)

// TestFromEmailIsASenderRef: an email's from_email is handed to the service
// as a sending-domain reference to resolve in the company's settings.
func TestFromEmailIsASenderRef(t *testing.T) {
	req, fields := validate(t, body(t, "email", `{"payload":{"from_email":"alex@Mail.Example.com"}}`))
	if fields != nil {
		t.Fatal(fields)
	}
	want := []contract.ResourceRef{{Field: "payload.from_email", Kind: contract.ResourceSendingDomain, ID: "alex@Mail.Example.com"}}
	if !slices.Equal(req.Refs, want) {
		t.Errorf("refs = %+v, want %+v", req.Refs, want)
	}
	if req, _ := validate(t, body(t, "email", "")); len(req.Refs) != 0 {
		t.Errorf("refs without from_email = %+v", req.Refs)
	}
}

func TestNotSendingDomain(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		domains []string
		ok      bool
	}{
		{"a@example.com", []string{"example.com"}, true},
		{"a@EXAMPLE.com", []string{"example.com"}, true},
		{"a@mail.example.com", []string{"example.com"}, true},
		{"a@x.y.example.com", []string{"example.org", "example.com"}, true},
		{"a@bücher.de", []string{"xn--bcher-kva.de"}, true},
		{"a@notexample.com", []string{"example.com"}, false},
		{"a@example.com", []string{"mail.example.com"}, false},
		{"a@example.com", nil, false},
	} {
		if got := contract.NotSendingDomain(tc.addr, tc.domains) == ""; got != tc.ok {
			t.Errorf("%s in %v: %v, want %v", tc.addr, tc.domains, got, tc.ok)
		}
	}
}

func TestSettingsSendingDomains(t *testing.T) {
	s, err := contract.ParseSettings([]byte(`{"timezone":"UTC","sending_domains":["Example.com","BÜCHER.de"],"default_from_email":"t@bücher.de"}`))
	if err != nil || !slices.Equal(s.SendingDomains, []string{"example.com", "xn--bcher-kva.de"}) {
		t.Fatalf("= %v, %v", s.SendingDomains, err)
	}
	if s, err := contract.ParseSettings([]byte(`{"timezone":"UTC"}`)); err != nil || s.SendingDomains != nil {
		t.Errorf("absent: %v, %v (filled with [] by WithDefaults)", s.SendingDomains, err)
	}
	for body, want := range map[string][]string{
		`{"timezone":"UTC","sending_domains":["a.example","A.EXAMPLE"]}`:                                {"sending_domains[1]"},
		`{"timezone":"UTC","sending_domains":["-a.example","a_b.example","a","a@b.example"]}`:           {"sending_domains[0]", "sending_domains[1]", "sending_domains[2]", "sending_domains[3]"},
		`{"timezone":"UTC","sending_domains":["` + strings.Repeat("a", 64) + `.example"]}`:              {"sending_domains[0]"},
		`{"timezone":"UTC","sending_domains":{}}`:                                                       {"sending_domains"},
		`{"timezone":"UTC","default_from_email":"t@example.com"}`:                                       {"default_from_email"},
		`{"timezone":"UTC","sending_domains":["example.org"],"default_from_email":"t@example.com"}`:     {"default_from_email"},
		`{"timezone":"UTC","sending_domains":["bad_domain.org"],"default_from_email":"t@example.com"}`:  {"sending_domains[0]"},
		`{"timezone":"UTC","sending_domains":["example.com"],"default_from_email":"t@example"}`:         {"default_from_email"},
		`{"timezone":"UTC","sending_domains":[` + strings.Repeat(`"a.example",`, 100) + `"b.example"]}`: {"sending_domains"},
	} {
		_, err := contract.ParseSettings([]byte(body))
		var ve *comms.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%.80s: %v", body, err)
			continue
		}
		var got []string
		for _, f := range ve.Fields {
			got = append(got, f.Field)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%.80s: fields %v, want %v (%v)", body, got, want, err)
		}
	}
}

// TestPublicSuffixesAreNotSendingDomains: declaring co.uk would claim every
// domain under it for one company.
func TestPublicSuffixesAreNotSendingDomains(t *testing.T) {
	for _, d := range []string{"co.uk", "com.au", "github.io", "CO.UK"} {
		if _, err := contract.ParseSettings([]byte(`{"timezone":"UTC","sending_domains":["` + d + `"]}`)); err == nil || !strings.Contains(err.Error(), "public suffix") {
			t.Errorf("%s: %v, want refused as a public suffix", d, err)
		}
	}
	for _, d := range []string{"acme.co.uk", "example.com", "acme.github.io"} {
		if _, err := contract.ParseSettings([]byte(`{"timezone":"UTC","sending_domains":["` + d + `"]}`)); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}
