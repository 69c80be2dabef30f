package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
)

// This file is the suite of unclaimed SMS receipts (feedback.SMSReceipts):
// SNS delivery reports kept by number and acceptance time.

func (s suite) smsReceipts(t *testing.T) {
	setup := func(t *testing.T) (*bundle, feedback.SMSReceipts) {
		t.Helper()
		b := s.setup(t)
		rs, ok := b.store.(feedback.SMSReceipts)
		if !ok {
			t.Fatalf("%T does not implement feedback.SMSReceipts", b.store)
		}
		return b, rs
	}
	receipt := func(b *bundle, to string, at time.Time) comms.SMSReceipt {
		return comms.SMSReceipt{Destination: to, ProviderMessageID: uuid.NewString(), AcceptedAt: at,
			Status: comms.DeliveryDelivered, Detail: "Message has been accepted by phone carrier", At: at.Add(1733 * time.Millisecond)}
	}
	// Numbers unique to the test: stores may be shared by nothing, but
	// a receipt's partition is global.
	number := func() string { return numberOf("receipts", uuid.NewString()) }

	t.Run("WindowAndOrder", func(t *testing.T) {
		t.Parallel()
		b, rs := setup(t)
		to, other := number(), number()
		t0 := b.now
		early := receipt(b, to, t0.Add(-time.Millisecond))
		first := receipt(b, to, t0)
		second, third := receipt(b, to, t0.Add(time.Second)), receipt(b, to, t0.Add(time.Second))
		if third.ProviderMessageID < second.ProviderMessageID {
			second, third = third, second
		}
		late := receipt(b, to, t0.Add(time.Second+time.Millisecond))
		elsewhere := receipt(b, other, t0)
		for _, r := range []comms.SMSReceipt{late, third, elsewhere, first, second, early} {
			requireNoError(t, rs.PutSMSReceipt(b.ctx, r))
		}
		got, err := rs.FindSMSReceipts(b.ctx, to, t0, t0.Add(time.Second))
		requireNoError(t, err)
		requireReceipts(t, []comms.SMSReceipt{first, second, third}, got)
		for _, r := range got {
			if r.AcceptedAt.Location() != time.UTC || r.At.Location() != time.UTC {
				t.Errorf("times not in UTC: %+v", r)
			}
		}

		got, err = rs.FindSMSReceipts(b.ctx, other, t0.Add(-time.Hour), t0.Add(time.Hour))
		requireNoError(t, err)
		requireReceipts(t, []comms.SMSReceipt{elsewhere}, got)
	})

	t.Run("PutAgainReplaces", func(t *testing.T) {
		t.Parallel()
		b, rs := setup(t)
		r := receipt(b, number(), b.now)
		requireNoError(t, rs.PutSMSReceipt(b.ctx, r))
		r.Status, r.Detail = comms.DeliveryOptedOut, "Phone is currently opted out"
		requireNoError(t, rs.PutSMSReceipt(b.ctx, r))
		got, err := rs.FindSMSReceipts(b.ctx, r.Destination, b.now, b.now)
		requireNoError(t, err)
		requireReceipts(t, []comms.SMSReceipt{r}, got)
	})

	t.Run("NoneFound", func(t *testing.T) {
		t.Parallel()
		b, rs := setup(t)
		r := receipt(b, number(), b.now)
		requireNoError(t, rs.PutSMSReceipt(b.ctx, r))
		for _, w := range [][2]time.Time{
			{b.now.Add(time.Millisecond), b.now.Add(time.Hour)},
			{b.now.Add(-time.Hour), b.now.Add(-time.Millisecond)},
			{b.now.Add(time.Second), b.now.Add(-time.Second)}, // to before from
		} {
			got, err := rs.FindSMSReceipts(b.ctx, r.Destination, w[0], w[1])
			requireNoError(t, err)
			if got == nil || len(got) != 0 {
				t.Errorf("window %v: %+v, want an empty list", w, got)
			}
		}
		got, err := rs.FindSMSReceipts(b.ctx, number(), b.now.Add(-time.Hour), b.now.Add(time.Hour))
		requireNoError(t, err)
		if got == nil || len(got) != 0 {
			t.Errorf("unknown number: %+v, want an empty list", got)
		}
	})
}

func requireReceipts(t *testing.T, want, got []comms.SMSReceipt) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("found %d receipts, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range want {
		requireEqual(t, want[i], got[i])
	}
}
