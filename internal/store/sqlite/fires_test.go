package sqlite_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// TestPendingFires: the fires of the pending rows due in [from, to), and of
// the processing rows whose lease ends in it, each the row's comms.FireOf,
// earliest first; a zero from has no lower bound.
func TestPendingFires(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "dispatcher.db"))
	base := time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)
	if err := s.CreateCompany(ctx, comms.Company{ID: "co_1", Credits: 100, CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	var rows []comms.Communication
	for i := range 6 { // due at base-1h, base, base+1h, … base+4h
		at := base.Add(time.Duration(i-1) * time.Hour)
		c := comms.Communication{
			ID: fmt.Sprintf("c%d", i), CompanyID: "co_1", Channel: comms.ChannelEmail, Status: comms.StatusPending,
			ScheduledFor: at, NextAttemptAt: at, Payload: json.RawMessage(`{"to_email":"a@example.com"}`),
			Source: comms.SourceAPI, CreatedAt: base, UpdatedAt: base, Token: fmt.Sprintf("t%d", i),
		}
		if _, err := s.CreateCommunication(ctx, comms.Change{Row: c}, nil); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, c)
	}
	// A processing row (a call awaiting its analysis until its lease's end,
	// base+150m): its fire is due when the lease ends, in the slice that
	// holds it.
	waiting := comms.Communication{ID: "c6", CompanyID: "co_1", Channel: comms.ChannelEmail, Status: comms.StatusProcessing,
		ScheduledFor: base, NextAttemptAt: base.Add(150 * time.Minute), LeaseUntil: base.Add(150 * time.Minute),
		Payload: json.RawMessage(`{"to_email":"a@example.com"}`), Source: comms.SourceAPI, CreatedAt: base, UpdatedAt: base, Token: "t6"}
	if _, err := s.CreateCommunication(ctx, comms.Change{Row: waiting}, nil); err != nil {
		t.Fatal(err)
	}
	rows = append(rows, waiting)
	for _, tc := range []struct {
		from, to time.Time
		want     []int
	}{
		{time.Time{}, base.Add(time.Hour), []int{0, 1}},
		{base.Add(2 * time.Hour), base.Add(3 * time.Hour), []int{3, 6}},
		{base.Add(time.Hour), base.Add(3 * time.Hour), []int{2, 3, 6}},
		{base.Add(3 * time.Hour), base.AddDate(1000, 0, 0), []int{4, 5}},
		{base.Add(30 * time.Minute), base.Add(40 * time.Minute), nil},
	} {
		got, err := s.PendingFires(ctx, tc.from, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		var want []comms.Fire
		for _, i := range tc.want {
			want = append(want, comms.FireOf(rows[i]))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("[%v, %v): %v, want %v", tc.from, tc.to, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("fire %d: %#v is not == %#v", i, got[i], want[i])
			}
		}
	}
}

// TestProcessingCommunications lists the processing rows alone.
func TestProcessingCommunications(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "dispatcher.db"))
	base := time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)
	if err := s.CreateCompany(ctx, comms.Company{ID: "co_1", Credits: 100, CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	for i, st := range []comms.Status{comms.StatusPending, comms.StatusProcessing, comms.StatusPending} {
		c := comms.Communication{
			ID: fmt.Sprintf("c%d", i), CompanyID: "co_1", Channel: comms.ChannelEmail, Status: st,
			ScheduledFor: base, NextAttemptAt: base, Payload: json.RawMessage(`{"to_email":"a@example.com"}`),
			Source: comms.SourceAPI, CreatedAt: base, UpdatedAt: base, Token: "t",
		}
		if st == comms.StatusProcessing {
			c.LeaseUntil = base.Add(time.Minute)
			c.LeaseOwner = "other"
			c.AttemptCount = 1
		}
		if _, err := s.CreateCommunication(ctx, comms.Change{Row: c}, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ProcessingCommunications(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "c1" || got[0].Status != comms.StatusProcessing {
		t.Fatalf("got %+v, want only c1", got)
	}
}
