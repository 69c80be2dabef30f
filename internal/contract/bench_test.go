package contract_test

import (
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/contract"
)

// BenchmarkValidate measures decoding and validating a create body alone.
func BenchmarkValidate(b *testing.B) {
	for _, ch := range []string{"email", "sms", "voice"} {
		raw := body(b, ch, "")
		b.Run(ch, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				doc, err := contract.DecodeJSON(raw)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := contract.ValidateCreate(doc, now, contract.ValidateOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
