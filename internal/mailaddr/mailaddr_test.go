package mailaddr

import (
	"strings"
	"testing"
)

func TestASCII(t *testing.T) {
	for in, want := range map[string]string{
		"sarah@example.com":                    "sarah@example.com",
		"Sarah.Lee+crm@Example.COM":            "Sarah.Lee+crm@example.com",
		"user@bücher.de":                       "user@xn--bcher-kva.de",
		"user@BÜCHER.de":                       "user@xn--bcher-kva.de",
		"o'brien@example.ie":                   "o'brien@example.ie",
		"x@xn--bcher-kva.de":                   "x@xn--bcher-kva.de",
		strings.Repeat("a", 64) + "@ex.com":    strings.Repeat("a", 64) + "@ex.com",
		"bounce@simulator.amazonses.com":       "bounce@simulator.amazonses.com",
		"a@" + strings.Repeat("b", 63) + ".io": "a@" + strings.Repeat("b", 63) + ".io",
	} {
		got, err := ASCII(in)
		if err != nil || got != want {
			t.Errorf("%q = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"dån@example.com",                      // non-ASCII local part: SES refuses it
		"用户@example.com",                       // likewise
		"sarah@exa_mple.com",                   // underscore: not a host name (STD3)
		"sarah@-example.com",                   // leading hyphen
		"sarah@example-.com",                   // trailing hyphen
		"sarah@example",                        // one label
		"sarah@example..com",                   // empty label
		"sarah@.example.com",                   // empty label
		"sarah@example.com.",                   // trailing dot: an empty last label
		"a@" + strings.Repeat("b", 64) + ".io", // label over 63
		strings.Repeat("a", 65) + "@ex.com",    // local part over 64
		"Sarah <sarah@example.com>",            // a display name
		"sarah@example.com (work)",             // a comment
		" sarah@example.com",                   // white space around
		"sarah",
		"\"john doe\"@example.com", // a quoted local part: not a dot-atom
		"",
		"@example.com",
		"sarah@",
		"sa rah@example.com",
		"sarah@exam ple.com",
		"sarah@xn--ab.com",        // invalid Punycode
		"sarah@\u202eexample.com", // a bidi control
	} {
		if got, err := ASCII(in); err == nil {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
	long := "a@" + strings.Repeat(strings.Repeat("b", 60)+".", 4) + "com" // domain 247, address 249
	if _, err := ASCII(long); err != nil {
		t.Errorf("a 249-character address: %v", err)
	}
	tooLong := strings.Repeat("a", 10) + "@" + strings.Repeat(strings.Repeat("b", 62)+".", 4) + "com" // domain 255
	if _, err := ASCII(tooLong); err == nil {
		t.Errorf("a 255-character domain was accepted")
	}
}

func TestDomain(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":      "example.com",
		"Mail.Example.COM": "mail.example.com",
		"bücher.de":        "xn--bcher-kva.de",
		"BÜCHER.de":        "xn--bcher-kva.de",
		"xn--bcher-kva.de": "xn--bcher-kva.de",
	} {
		if got, err := Domain(in); err != nil || got != want {
			t.Errorf("Domain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "example", "exa_mple.com", " example.com", "example..com", "example.com.", "a@example.com", "xn--ab.com"} {
		if got, err := Domain(in); err == nil {
			t.Errorf("Domain(%q) = %q, want an error", in, got)
		}
	}
	if got := DomainOf("Sarah@BÜCHER.de"); got != "xn--bcher-kva.de" {
		t.Errorf("DomainOf = %q", got)
	}
	if got := DomainOf("nope"); got != "" {
		t.Errorf("DomainOf(nope) = %q", got)
	}
}
