package webhooks

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

func TestDeliveryIDIsStableAndDistinct(t *testing.T) {
	a := DeliveryID("we_1", "ev_1")
	if a != DeliveryID("we_1", "ev_1") {
		t.Fatal("DeliveryID is not stable")
	}
	if !strings.HasPrefix(a, "msg_") || len(a) != len("msg_")+36 {
		t.Fatalf("DeliveryID = %q, want msg_<uuid>", a)
	}
	for _, other := range []string{DeliveryID("we_2", "ev_1"), DeliveryID("we_1", "ev_2"), DeliveryID("we_1ev_", "1")} {
		if other == a {
			t.Fatalf("DeliveryID collides: %q", a)
		}
	}
	if _, err := Sign([]string{"whsec_" + strings.Repeat("A", 32)}, a, time.Now(), nil); errors.Is(err, ErrMalformedID) {
		t.Fatalf("a delivery id is not a valid webhook-id: %v", err)
	}
}

func TestKeepAttempts(t *testing.T) {
	as := make([]Attempt, 25)
	for i := range as {
		as[i].StatusCode = i
	}
	kept := KeepAttempts(as)
	if len(kept) != MaxStoredAttempts || kept[0].StatusCode != 5 || kept[19].StatusCode != 24 {
		t.Fatalf("KeepAttempts kept %d from %d", len(kept), kept[0].StatusCode)
	}
	if got := KeepAttempts(as[:3]); len(got) != 3 {
		t.Fatalf("KeepAttempts of 3 = %d", len(got))
	}
}

func TestDeliveryCheck(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ok := Delivery{ID: "msg_1", CompanyID: "co_1", EndpointID: "we_1", State: DeliveryPending, NextAttemptAt: now}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Delivery){
		"no id":                 func(d *Delivery) { d.ID = "" },
		"no company":            func(d *Delivery) { d.CompanyID = "" },
		"no endpoint":           func(d *Delivery) { d.EndpointID = "" },
		"unknown state":         func(d *Delivery) { d.State = "done" },
		"pending without time":  func(d *Delivery) { d.NextAttemptAt = time.Time{} },
		"succeeded with a time": func(d *Delivery) { d.State = DeliverySucceeded },
	} {
		d := ok
		mod(&d)
		if err := d.Check(); !errors.Is(err, ErrInvalidDelivery) {
			t.Errorf("%s: Check = %v, want ErrInvalidDelivery", name, err)
		}
	}
}

func TestDeliveryCursorRoundTrips(t *testing.T) {
	d := Delivery{ID: "msg_x|y", CreatedAt: time.Date(2026, 12, 1, 9, 0, 0, 123456789, time.FixedZone("x", 3600))}
	at, id, err := ParseDeliveryCursor(DeliveryCursor(d))
	if err != nil || !at.Equal(d.CreatedAt) || at.Location() != time.UTC || id != d.ID {
		t.Fatalf("round trip = %v %q %v", at, id, err)
	}
	for _, bad := range []string{"!", "", "bm9wZQ"} {
		if _, _, err := ParseDeliveryCursor(bad); !errors.Is(err, comms.ErrBadCursor) {
			t.Errorf("ParseDeliveryCursor(%q) = %v, want ErrBadCursor", bad, err)
		}
	}
}
