package comms_test

import (
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// BenchmarkValidate measures decoding and validating a create body alone.
func BenchmarkValidate(b *testing.B) {
	for _, ch := range []string{"email", "sms", "voice"} {
		raw := body(b, ch, "")
		b.Run(ch, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				doc, err := comms.DecodeJSON(raw)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := comms.ValidateCreate(doc, now, comms.ValidateOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
