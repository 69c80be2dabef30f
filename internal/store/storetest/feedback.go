package storetest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// This file is the suite of delivery feedback: the row's delivery part and
// its filter, suppressions (with a Change and on their own), the lookup by
// provider message id, and phone numbers claimed by one resource at most.

// numberOf returns an E.164 number derived from (companyID, id): fixtures
// need distinct numbers, as a number belongs to one resource.
func numberOf(companyID, id string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(companyID + "/" + id))
	return fmt.Sprintf("+614%08d", h.Sum64()%100_000_000)
}

// sentEmail stores a new email row to rcpt and takes it through Claim and
// RecordSent (message msgID); it returns the row as stored.
func (b *bundle) sentEmail(t *testing.T, companyID, rcpt, msgID string, cc ...string) comms.Communication {
	t.Helper()
	c := b.comm(companyID, b.now)
	ccJSON, _ := json.Marshal(append([]string{}, cc...))
	c.Payload = []byte(`{"to_email":"` + rcpt + `","cc":` + string(ccJSON) + `,"subject":"Hi","html_body":"<p>Hi</p>"}`)
	ch := comms.Create(c, b.now)
	_, err := b.store.CreateCommunication(b.ctx, ch, nil)
	requireNoError(t, err)
	row := ch.Row
	row.Version = 1
	row = b.apply(t)(comms.Claim(row, b.now.Add(2*time.Minute), b.now.Add(time.Second)))
	return b.apply(t)(comms.RecordSent(row, msgID, b.now.Add(2*time.Second)))
}

func (s suite) delivery(t *testing.T) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		row := b.sentEmail(t, b.company.ID, "ada@example.com", "ses-"+uuid.NewString())
		if row.Delivery.Status != comms.DeliveryAccepted {
			t.Fatalf("fixture bug: RecordSent left delivery %+v", row.Delivery)
		}
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, row.ID)
		requireNoError(t, err)
		requireEqual(t, row.Delivery, got.Delivery)

		at := b.now.Add(3 * time.Second)
		stored := b.apply(t)(comms.RecordDelivery(got, comms.DeliveryReport{Status: comms.DeliveryDelivered,
			ProviderMessageID: row.ProviderMessageID, At: at, Detail: "250 2.0.0 OK — reçu"}, b.now.Add(4*time.Second)))
		want := comms.Delivery{Status: comms.DeliveryDelivered, At: at, Detail: "250 2.0.0 OK — reçu"}
		requireEqual(t, want, stored.Delivery)
		got, err = b.store.GetCommunication(b.ctx, b.company.ID, row.ID)
		requireNoError(t, err)
		requireEqual(t, stored, got)
		requireEqual(t, want, got.Delivery)

		listed, _, err := b.store.ListCommunications(b.ctx, b.company.ID, comms.ListFilter{Limit: 10})
		requireNoError(t, err)
		if len(listed) != 1 {
			t.Fatalf("listed %d rows, want 1", len(listed))
		}
		requireEqual(t, got, listed[0])

		// A row created with its delivery part keeps it too, and a change
		// that clears it clears it.
		full := b.fullComm(b.company.ID)
		full.Channel, full.Status = comms.ChannelSMS, comms.StatusSent
		full.Delivery = comms.Delivery{Status: comms.DeliveryOptedOut, At: b.now.Add(time.Minute), Detail: "Phone has opted out"}
		c := b.create(t, full)
		got, err = b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		requireEqual(t, c, got)
		c.Delivery = comms.Delivery{}
		stored, _, err = b.store.UpdateCommunication(b.ctx, comms.Change{Row: c}, false)
		requireNoError(t, err)
		got, err = b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		requireEqual(t, stored, got)
		requireEqual(t, comms.Delivery{}, got.Delivery)
	})

	t.Run("Filter", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 100)
		statuses := []comms.DeliveryStatus{comms.DeliveryDelivered, comms.DeliveryBounced, comms.DeliveryDelivered,
			comms.DeliveryAccepted, comms.DeliveryDelivered, comms.DeliveryOptedOut, ""}
		var rows []comms.Communication
		for i := range 21 {
			c := b.comm(b.company.ID, b.now.Add(time.Duration(i%4)*time.Minute))
			c.Channel = []comms.Channel{comms.ChannelEmail, comms.ChannelSMS}[i%2]
			if d := statuses[i%7]; d != "" {
				c.Status = comms.StatusSent
				c.Delivery = comms.Delivery{Status: d, At: b.now.Add(time.Hour), Detail: string(d)}
			}
			if i == 14 {
				// Only sent rows have a delivery status to filter on.
				c.Status = comms.StatusPending
			}
			rows = append(rows, b.create(t, c))
		}
		theirs := b.comm(other.ID, b.now)
		theirs.Status, theirs.Delivery = comms.StatusSent, comms.Delivery{Status: comms.DeliveryDelivered, At: b.now}
		b.create(t, theirs)

		model := func(f comms.ListFilter) []string {
			var out []comms.Communication
			for _, c := range rows {
				if c.Status == comms.StatusSent && c.Delivery.Status == f.DeliveryStatus &&
					(f.Channel == "" || c.Channel == f.Channel) && (f.Status == "" || c.Status == f.Status) {
					out = append(out, c)
				}
			}
			slices.SortFunc(out, byScheduleThenID)
			return ids(out)
		}
		for _, tc := range []struct {
			name   string
			filter comms.ListFilter
			empty  bool
		}{
			{"Delivered", comms.ListFilter{DeliveryStatus: comms.DeliveryDelivered}, false},
			{"Bounced", comms.ListFilter{DeliveryStatus: comms.DeliveryBounced}, false},
			{"DeliveredSMS", comms.ListFilter{DeliveryStatus: comms.DeliveryDelivered, Channel: comms.ChannelSMS}, false},
			{"DeliveredAndSent", comms.ListFilter{DeliveryStatus: comms.DeliveryDelivered, Status: comms.StatusSent}, false},
			{"DeliveredAndPending", comms.ListFilter{DeliveryStatus: comms.DeliveryDelivered, Status: comms.StatusPending}, true},
			{"NoneComplained", comms.ListFilter{DeliveryStatus: comms.DeliveryComplained}, true},
		} {
			want := model(tc.filter)
			if (len(want) == 0) != tc.empty {
				t.Fatalf("%s: fixture bug: the model lists %d rows", tc.name, len(want))
			}
			for _, limit := range []int{1, 2, 100} {
				f := tc.filter
				f.Limit = limit
				got := ids(listAll(t, b.ctx, b.store, b.company.ID, f))
				if !slices.Equal(want, got) {
					t.Fatalf("%s, limit %d: listed\n  %s\nwant\n  %s", tc.name, limit, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
		}
	})
}

// bounce returns the change that records a permanent bounce of row's
// message to rcpts, suppressing them.
func (b *bundle) bounce(t *testing.T, row comms.Communication, rcpts ...string) comms.Change {
	t.Helper()
	ch, err := comms.RecordDelivery(row, comms.DeliveryReport{Status: comms.DeliveryBounced, ProviderMessageID: row.ProviderMessageID,
		At: b.now.Add(time.Minute), Detail: "Permanent/General", Recipients: rcpts, Suppress: comms.SuppressBounce}, b.now.Add(time.Minute))
	requireNoError(t, err)
	return ch
}

func (s suite) suppressWithChange(t *testing.T) {
	t.Run("WrittenWithTheRow", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		row := b.sentEmail(t, b.company.ID, "Ada@Example.com", "ses-"+uuid.NewString(), "grace@example.com")
		// Two spellings of one address are one suppression.
		ch := b.bounce(t, row, "Ada@Example.com", " ada@example.com", "grace@example.com")
		stored, _, err := b.store.UpdateCommunication(b.ctx, ch, false)
		requireNoError(t, err)
		if stored.Delivery.Status != comms.DeliveryBounced {
			t.Fatalf("delivery = %+v", stored.Delivery)
		}
		for _, rcpt := range []string{"ada@example.com", "grace@example.com"} {
			got, err := b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, rcpt)
			requireNoError(t, err)
			want := comms.Suppression{CompanyID: b.company.ID, Channel: comms.SuppressEmail, Recipient: rcpt,
				Reason: comms.SuppressBounce, Detail: "Permanent/General", CommunicationID: row.ID,
				CreatedAt: b.now.Add(time.Minute), CreatedBy: comms.SuppressedBySystem}
			requireEqual(t, want, got)
		}
		listed, more, err := b.store.ListSuppressions(b.ctx, b.company.ID, comms.SuppressionFilter{Limit: 10})
		requireNoError(t, err)
		if len(listed) != 2 || more {
			t.Fatalf("listed %d suppressions (more %v), want 2", len(listed), more)
		}
		evs := b.history(t, b.company.ID, row.ID, 100)
		if last := evs[len(evs)-1]; last.Type != comms.EventBounced {
			t.Fatalf("last event %s, want bounced", last.Type)
		}
	})

	t.Run("NotWrittenWhenTheCompareAndSwapLoses", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		row := b.sentEmail(t, b.company.ID, "ada@example.com", "ses-"+uuid.NewString())
		stale := b.bounce(t, row, "ada@example.com")
		// Another report moves the row on first.
		winner := b.apply(t)(comms.RecordDelivery(row, comms.DeliveryReport{Status: comms.DeliveryDelivered,
			ProviderMessageID: row.ProviderMessageID, At: b.now.Add(30 * time.Second)}, b.now.Add(30*time.Second)))

		_, _, err := b.store.UpdateCommunication(b.ctx, stale, false)
		requireErrorIs(t, err, comms.ErrConflict)
		_, err = b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com")
		requireErrorIs(t, err, comms.ErrNotFound)
		listed, _, err := b.store.ListSuppressions(b.ctx, b.company.ID, comms.SuppressionFilter{IncludeLifted: true, Limit: 10})
		requireNoError(t, err)
		if len(listed) != 0 {
			t.Fatalf("a lost write left %d suppressions", len(listed))
		}
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, row.ID)
		requireNoError(t, err)
		requireEqual(t, winner, got)
	})

	t.Run("ReplacesALiftedOne", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		b.putSupp(t, comms.Suppression{CompanyID: b.company.ID, Channel: comms.SuppressEmail,
			Recipient: "ada@example.com", Reason: comms.SuppressManual, CreatedAt: b.now, CreatedBy: "key_1"})
		_, err := b.store.LiftSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com", "key_1", b.now.Add(time.Second))
		requireNoError(t, err)

		row := b.sentEmail(t, b.company.ID, "ada@example.com", "ses-"+uuid.NewString())
		_, _, err = b.store.UpdateCommunication(b.ctx, b.bounce(t, row, "ada@example.com"), false)
		requireNoError(t, err)
		got, err := b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com")
		requireNoError(t, err)
		if !got.Active() || got.Reason != comms.SuppressBounce || got.CommunicationID != row.ID || got.LiftedBy != "" {
			t.Fatalf("after a bounce of a lifted address: %+v, want an active bounce suppression", got)
		}
	})
}

// suppressionsKeepActive: a suppression is added only if the recipient has
// no active one (first reason wins while active), by PutSuppression and by
// a Change's Suppress, each one conditional write.
func (s suite) suppressionsKeepActive(t *testing.T) {
	t.Run("PutKeepsAnActiveOne", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		manual := b.putSupp(t, b.supp(b.company.ID, comms.SuppressEmail, "ada@example.com"))
		other := manual
		other.Reason, other.Detail, other.CreatedBy, other.CreatedAt = comms.SuppressComplaint, "later", "key_2", b.now.Add(time.Hour)
		got, created, err := b.store.PutSuppression(b.ctx, other)
		requireNoError(t, err)
		if created {
			t.Fatalf("a put over an active suppression created")
		}
		requireEqual(t, manual, got)
		stored, err := b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com")
		requireNoError(t, err)
		requireEqual(t, manual, stored)
	})

	t.Run("PutAfterALiftReturnsTheLifts", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		x := b.putSupp(t, b.supp(b.company.ID, comms.SuppressEmail, "ada@example.com"))
		lifted, err := b.store.LiftSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com", "key_1", b.now.Add(time.Minute))
		requireNoError(t, err)
		again := x
		again.CreatedAt = b.now.Add(time.Hour)
		got := b.putSupp(t, again)
		if len(got.Lifts) != 1 || got.Lifts[0] != lifted.Lifts[0] || !got.Active() {
			t.Fatalf("the put's record: %+v, want active with the earlier lift", got)
		}
		stored, err := b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com")
		requireNoError(t, err)
		requireEqual(t, stored, got)
	})

	t.Run("ConcurrentPutsOneCreates", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		const n = 6
		type res struct {
			x       comms.Suppression
			created bool
			err     error
		}
		out := make([]res, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				x := b.supp(b.company.ID, comms.SuppressEmail, "ada@example.com")
				x.Detail, x.CreatedBy = fmt.Sprintf("put %d", i), fmt.Sprintf("key_%d", i)
				out[i].x, out[i].created, out[i].err = b.store.PutSuppression(b.ctx, x)
			})
		}
		wg.Wait()
		stored, err := b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com")
		requireNoError(t, err)
		created := 0
		for i, r := range out {
			requireNoError(t, r.err)
			if r.created {
				created++
			}
			if !reflect.DeepEqual(r.x, stored) {
				t.Errorf("put %d returned %+v, the stored one is %+v", i, r.x, stored)
			}
		}
		if created != 1 {
			t.Fatalf("%d of %d concurrent puts created, want exactly 1", created, n)
		}
	})

	t.Run("ChangeKeepsAnActiveOne", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		// The company suppressed ada by hand after the recorder read
		// her suppressions: the report's write is refused (the caller
		// reads again), and nothing of it is written.
		row := b.sentEmail(t, b.company.ID, "ada@example.com", "ses-"+uuid.NewString())
		stale := b.bounce(t, row, "ada@example.com")
		manual := b.putSupp(t, b.supp(b.company.ID, comms.SuppressEmail, "ada@example.com"))
		_, _, err := b.store.UpdateCommunication(b.ctx, stale, false)
		requireErrorIs(t, err, comms.ErrConflict)
		got, err := b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com")
		requireNoError(t, err)
		requireEqual(t, manual, got)
		reread, err := b.store.GetCommunication(b.ctx, b.company.ID, row.ID)
		requireNoError(t, err)
		requireEqual(t, row, reread)
	})
}

// putSupp puts x, which must create it, and returns the stored record.
func (b *bundle) putSupp(t *testing.T, x comms.Suppression) comms.Suppression {
	t.Helper()
	got, created, err := b.store.PutSuppression(b.ctx, x)
	requireNoError(t, err)
	if !created {
		t.Fatalf("PutSuppression of %s %s: not created; the stored one is %+v", x.Channel, x.Recipient, got)
	}
	return got
}

// supp returns an active manual suppression of the company.
func (b *bundle) supp(companyID string, ch comms.SuppressionChannel, rcpt string) comms.Suppression {
	return comms.Suppression{CompanyID: companyID, Channel: ch, Recipient: rcpt, Reason: comms.SuppressManual,
		Detail: "asked by phone", CreatedAt: b.now, CreatedBy: "key_" + companyID}
}

// suppKey is a suppression's position in a listing, its cursor.
func suppKey(x comms.Suppression) string { return string(x.Channel) + ":" + x.Recipient }

// listSupps pages through a listing with f.Limit, checking every page's
// size and more flag, and returns the positions visited.
func listSupps(t *testing.T, b *bundle, companyID string, f comms.SuppressionFilter) []string {
	t.Helper()
	var all []string
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("paging does not end")
		}
		xs, more, err := b.store.ListSuppressions(b.ctx, companyID, f)
		requireNoError(t, err)
		if len(xs) > f.Limit || more && len(xs) != f.Limit {
			t.Fatalf("page %d has %d suppressions (more %v), limit %d", page, len(xs), more, f.Limit)
		}
		for _, x := range xs {
			if x.CompanyID != companyID {
				t.Fatalf("listed a suppression of company %s", x.CompanyID)
			}
			all = append(all, suppKey(x))
		}
		if !more {
			return all
		}
		f.After = suppKey(xs[len(xs)-1])
	}
}

func (s suite) suppressions(t *testing.T) {
	t.Run("PutGetReplace", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		lifted := b.now.Add(time.Hour)
		x := comms.Suppression{CompanyID: b.company.ID, Channel: comms.SuppressSMS, Recipient: "+61412345678",
			Reason: comms.SuppressOptOut, Detail: "Phone has opted out — STOP", CommunicationID: uuid.NewString(),
			CreatedAt: b.now, CreatedBy: comms.SuppressedBySystem, LiftedAt: &lifted, LiftedBy: "key_1"}
		b.putSupp(t, x)
		got, err := b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressSMS, "+61412345678")
		requireNoError(t, err)
		requireEqual(t, x, got)

		// A put replaces every field, here making it active again.
		y := b.supp(b.company.ID, comms.SuppressSMS, "+61412345678")
		b.putSupp(t, y)
		got, err = b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressSMS, "+61412345678")
		requireNoError(t, err)
		requireEqual(t, y, got)

		// The channel is part of the key.
		_, err = b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "+61412345678")
		requireErrorIs(t, err, comms.ErrNotFound)
		_, err = b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "never@example.com")
		requireErrorIs(t, err, comms.ErrNotFound)
		_, _, err = b.store.PutSuppression(b.ctx, b.supp("co_"+uuid.NewString(), comms.SuppressEmail, "a@example.com"))
		requireErrorIs(t, err, comms.ErrNotFound)
	})

	t.Run("Lift", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		x := b.supp(b.company.ID, comms.SuppressEmail, "ada@example.com")
		b.putSupp(t, x)
		at := b.now.Add(time.Hour)
		lifted, err := b.store.LiftSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com", "key_lifter", at)
		requireNoError(t, err)
		want := x
		want.LiftedAt, want.LiftedBy = &at, "key_lifter"
		want.Lifts = []comms.SuppressionLift{x.Lifted("key_lifter", at)}
		requireEqual(t, want, lifted)
		got, err := b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com")
		requireNoError(t, err)
		requireEqual(t, want, got)

		// Lifting it again, or what was never suppressed, finds no active one.
		_, err = b.store.LiftSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com", "key_lifter", at.Add(time.Hour))
		requireErrorIs(t, err, comms.ErrNotFound)
		_, err = b.store.LiftSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "never@example.com", "key_lifter", at)
		requireErrorIs(t, err, comms.ErrNotFound)
		got, err = b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com")
		requireNoError(t, err)
		requireEqual(t, want, got) // the first lift stands

		// Put again after the lift: active again, the first lift kept, and
		// liftable again — each lift recorded with who and when.
		again := x
		again.CreatedAt = b.now.Add(2 * time.Hour)
		again.Reason = comms.SuppressComplaint
		b.putSupp(t, again)
		got, err = b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com")
		requireNoError(t, err)
		wantAgain := again
		wantAgain.Lifts = want.Lifts
		requireEqual(t, wantAgain, got)
		second := b.now.Add(3 * time.Hour)
		got, err = b.store.LiftSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com", "key_2", second)
		requireNoError(t, err)
		if len(got.Lifts) != 2 || got.Lifts[0] != x.Lifted("key_lifter", at) || got.Lifts[1] != again.Lifted("key_2", second) {
			t.Fatalf("lifts after two lifts: %+v", got.Lifts)
		}
		// A provider report's suppression keeps the lifts too.
		row := b.sentEmail(t, b.company.ID, "ada@example.com", "ses-"+uuid.NewString())
		_, _, err = b.store.UpdateCommunication(b.ctx, b.bounce(t, row, "ada@example.com"), false)
		requireNoError(t, err)
		got, err = b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com")
		requireNoError(t, err)
		if !got.Active() || got.Reason != comms.SuppressBounce || len(got.Lifts) != 2 {
			t.Fatalf("after a bounce: %+v", got)
		}
	})

	t.Run("ListPagingAndFilters", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		var all []comms.Suppression
		// Put in an order that is not the listing's.
		for i, r := range []string{"zoe@example.com", "+61400000002", "ada@example.com", "+14155550100", "bob@example.com",
			"+61400000001", "carl@example.com", "ada@example.org", "+61400000003"} {
			ch := comms.SuppressEmail
			if strings.HasPrefix(r, "+") {
				ch = comms.SuppressSMS
			}
			x := b.supp(b.company.ID, ch, r)
			x.CreatedAt = b.now.Add(time.Duration(i) * time.Second)
			b.putSupp(t, x)
			all = append(all, x)
		}
		// The same recipient on the other channel, for the recipient filter.
		both := b.supp(b.company.ID, comms.SuppressSMS, "ada@example.com")
		b.putSupp(t, both)
		all = append(all, both)
		for _, r := range []string{"bob@example.com", "+61400000001"} {
			ch := comms.SuppressEmail
			if strings.HasPrefix(r, "+") {
				ch = comms.SuppressSMS
			}
			_, err := b.store.LiftSuppression(b.ctx, b.company.ID, ch, r, "key_1", b.now.Add(time.Hour))
			requireNoError(t, err)
			for i := range all {
				if all[i].Recipient == r {
					at := b.now.Add(time.Hour)
					all[i].LiftedAt = &at
				}
			}
		}
		model := func(f comms.SuppressionFilter) []string {
			var out []string
			for _, x := range all {
				if (f.Channel == "" || x.Channel == f.Channel) && (f.Recipient == "" || x.Recipient == f.Recipient) &&
					(f.IncludeLifted || x.Active()) {
					out = append(out, suppKey(x))
				}
			}
			slices.SortFunc(out, func(a, c string) int {
				ac, ar, _ := strings.Cut(a, ":")
				cc, cr, _ := strings.Cut(c, ":")
				if n := strings.Compare(ac, cc); n != 0 {
					return n
				}
				return strings.Compare(ar, cr)
			})
			return out
		}
		for _, tc := range []struct {
			name string
			f    comms.SuppressionFilter
			n    int
		}{
			{"Active", comms.SuppressionFilter{}, 8},
			{"IncludeLifted", comms.SuppressionFilter{IncludeLifted: true}, 10},
			{"Email", comms.SuppressionFilter{Channel: comms.SuppressEmail}, 4},
			{"SMSIncludeLifted", comms.SuppressionFilter{Channel: comms.SuppressSMS, IncludeLifted: true}, 5},
			{"Recipient", comms.SuppressionFilter{Recipient: "ada@example.com"}, 2},
			{"RecipientAndChannel", comms.SuppressionFilter{Recipient: "ada@example.com", Channel: comms.SuppressSMS}, 1},
			{"LiftedRecipient", comms.SuppressionFilter{Recipient: "bob@example.com"}, 0},
			{"LiftedRecipientIncluded", comms.SuppressionFilter{Recipient: "bob@example.com", IncludeLifted: true}, 1},
		} {
			want := model(tc.f)
			if len(want) != tc.n {
				t.Fatalf("%s: fixture bug: the model lists %d, want %d", tc.name, len(want), tc.n)
			}
			for _, limit := range []int{1, 2, 100} {
				f := tc.f
				f.Limit = limit
				got := listSupps(t, b, b.company.ID, f)
				if !slices.Equal(want, got) {
					t.Fatalf("%s, limit %d: listed\n  %s\nwant\n  %s", tc.name, limit, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
		}

		// Listed suppressions are whole.
		xs, _, err := b.store.ListSuppressions(b.ctx, b.company.ID, comms.SuppressionFilter{Recipient: "zoe@example.com", Limit: 1})
		requireNoError(t, err)
		if len(xs) != 1 {
			t.Fatalf("listed %d, want 1", len(xs))
		}
		requireEqual(t, all[0], xs[0])

		// A cursor on the other channel: the channel filter still holds.
		got := listSupps(t, b, b.company.ID, comms.SuppressionFilter{Channel: comms.SuppressSMS, After: "email:zoe@example.com", Limit: 2})
		requireIDs(t, model(comms.SuppressionFilter{Channel: comms.SuppressSMS}), got)
		got = listSupps(t, b, b.company.ID, comms.SuppressionFilter{Channel: comms.SuppressEmail, After: "sms:+1", Limit: 2})
		if len(got) != 0 {
			t.Fatalf("email after an sms cursor listed %v", got)
		}
		_, _, err = b.store.ListSuppressions(b.ctx, b.company.ID, comms.SuppressionFilter{After: "nonsense", Limit: 2})
		requireErrorIs(t, err, comms.ErrBadCursor)
	})

	t.Run("PagingAtOneHundred", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		var want []string
		for i := range 101 {
			x := b.supp(b.company.ID, comms.SuppressEmail, fmt.Sprintf("user%03d@example.com", i))
			b.putSupp(t, x)
			want = append(want, suppKey(x))
		}
		xs, more, err := b.store.ListSuppressions(b.ctx, b.company.ID, comms.SuppressionFilter{Limit: 100})
		requireNoError(t, err)
		if len(xs) != 100 || !more {
			t.Fatalf("listed %d (more %v), want 100 and more", len(xs), more)
		}
		requireIDs(t, want, listSupps(t, b, b.company.ID, comms.SuppressionFilter{Limit: 100}))
	})

	t.Run("TenantIsolation", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 0)
		mine := b.supp(b.company.ID, comms.SuppressEmail, "ada@example.com")
		b.putSupp(t, mine)
		b.putSupp(t, b.supp(b.company.ID, comms.SuppressSMS, "+61412345678"))

		_, err := b.store.GetSuppression(b.ctx, other.ID, comms.SuppressEmail, "ada@example.com")
		requireErrorIs(t, err, comms.ErrNotFound)
		_, err = b.store.LiftSuppression(b.ctx, other.ID, comms.SuppressEmail, "ada@example.com", "key_x", b.now)
		requireErrorIs(t, err, comms.ErrNotFound)
		if got := listSupps(t, b, other.ID, comms.SuppressionFilter{IncludeLifted: true, Limit: 100}); len(got) != 0 {
			t.Fatalf("another company listed %v", got)
		}

		// The other company suppressing and lifting the same address
		// touches only its own.
		theirs := b.supp(other.ID, comms.SuppressEmail, "ada@example.com")
		b.putSupp(t, theirs)
		_, err = b.store.LiftSuppression(b.ctx, other.ID, comms.SuppressEmail, "ada@example.com", "key_x", b.now)
		requireNoError(t, err)
		got, err := b.store.GetSuppression(b.ctx, b.company.ID, comms.SuppressEmail, "ada@example.com")
		requireNoError(t, err)
		requireEqual(t, mine, got)
		requireIDs(t, []string{"email:ada@example.com", "sms:+61412345678"},
			listSupps(t, b, b.company.ID, comms.SuppressionFilter{Limit: 1}))
		requireIDs(t, []string{"email:ada@example.com"},
			listSupps(t, b, other.ID, comms.SuppressionFilter{IncludeLifted: true, Limit: 1}))
	})
}

func (s suite) providerMessageID(t *testing.T) {
	t.Run("FindsTheSentRow", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 10)
		msg := "ses-" + uuid.NewString()
		row := b.sentEmail(t, b.company.ID, "ada@example.com", msg)
		b.sentEmail(t, other.ID, "ada@example.com", "ses-"+uuid.NewString())
		got, err := b.store.CommunicationByProviderMessageID(b.ctx, msg)
		requireNoError(t, err)
		requireEqual(t, row, got)

		// Later transitions keep it found, as it is now.
		row = b.apply(t)(comms.RecordDelivery(row, comms.DeliveryReport{Status: comms.DeliveryDelivered,
			ProviderMessageID: msg, At: b.now.Add(time.Minute)}, b.now.Add(time.Minute)))
		got, err = b.store.CommunicationByProviderMessageID(b.ctx, msg)
		requireNoError(t, err)
		requireEqual(t, row, got)
	})

	t.Run("SettledLate", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := b.comm(b.company.ID, b.now)
		c.Channel = comms.ChannelSMS
		ch := comms.Create(c, b.now)
		_, err := b.store.CreateCommunication(b.ctx, ch, nil)
		requireNoError(t, err)
		row := ch.Row
		row.Version = 1
		row = b.apply(t)(comms.Claim(row, b.now.Add(2*time.Minute), b.now.Add(time.Second)))
		msg := "sns-" + uuid.NewString()
		row = b.apply(t)(comms.SettleAttempt(row, msg, b.now.Add(3*time.Minute)))
		got, err := b.store.CommunicationByProviderMessageID(b.ctx, msg)
		requireNoError(t, err)
		requireEqual(t, row, got)
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		b.sentEmail(t, b.company.ID, "ada@example.com", "ses-"+uuid.NewString())
		b.create(t, b.comm(b.company.ID, b.now)) // no message id yet
		for _, id := range []string{"ses-" + uuid.NewString(), ""} {
			_, err := b.store.CommunicationByProviderMessageID(b.ctx, id)
			requireErrorIs(t, err, comms.ErrNotFound)
		}
	})
}

func (s suite) phoneNumberClaims(t *testing.T) {
	phone := func(b *bundle, companyID, id, e164 string) comms.PhoneNumber {
		return comms.PhoneNumber{ID: id, CompanyID: companyID, E164: e164, Capabilities: []string{"sms"},
			Label: "label of " + id, CreatedAt: b.now, UpdatedAt: b.now}
	}
	// requireHeld checks that e164 is held: putting it under a new id of
	// another company is refused.
	requireHeld := func(t *testing.T, b *bundle, e164 string) {
		t.Helper()
		stranger := b.newCompany(t, 0)
		err := b.store.PutPhoneNumber(b.ctx, phone(b, stranger.ID, uuid.NewString(), e164))
		requireErrorIs(t, err, comms.ErrPhoneNumberTaken)
	}
	requireFree := func(t *testing.T, b *bundle, e164 string) {
		t.Helper()
		stranger := b.newCompany(t, 0)
		requireNoError(t, b.store.PutPhoneNumber(b.ctx, phone(b, stranger.ID, uuid.NewString(), e164)))
	}

	t.Run("TakenAcrossCompaniesAndIDs", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 0)
		n := numberOf(b.company.ID, "taken")
		mine := phone(b, b.company.ID, "p1", n)
		requireNoError(t, b.store.PutPhoneNumber(b.ctx, mine))

		for _, p := range []comms.PhoneNumber{
			phone(b, other.ID, "p1", n),     // another company, same id
			phone(b, other.ID, "p2", n),     // another company, another id
			phone(b, b.company.ID, "p3", n), // this company, another id
		} {
			err := b.store.PutPhoneNumber(b.ctx, p)
			requireErrorIs(t, err, comms.ErrPhoneNumberTaken)
			if !strings.Contains(err.Error(), "PutPhoneNumber") {
				t.Errorf("error %q does not name PutPhoneNumber", err)
			}
			_, err = b.store.GetPhoneNumber(b.ctx, p.CompanyID, p.ID)
			requireErrorIs(t, err, comms.ErrNotFound)
		}
		// Its own resource may put it again.
		mine.Label, mine.UpdatedAt = "relabelled", b.now.Add(time.Hour)
		requireNoError(t, b.store.PutPhoneNumber(b.ctx, mine))
		got, err := b.store.GetPhoneNumber(b.ctx, b.company.ID, "p1")
		requireNoError(t, err)
		requireEqual(t, mine, got)
	})

	t.Run("RefusedPutWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 0)
		n, theirs := numberOf(b.company.ID, "n"), numberOf(other.ID, "theirs")
		requireNoError(t, b.store.PutPhoneNumber(b.ctx, phone(b, b.company.ID, "p1", n)))
		before := phone(b, other.ID, "p2", theirs)
		requireNoError(t, b.store.PutPhoneNumber(b.ctx, before))

		changed := before
		changed.E164, changed.Label = n, "grab"
		requireErrorIs(t, b.store.PutPhoneNumber(b.ctx, changed), comms.ErrPhoneNumberTaken)
		got, err := b.store.GetPhoneNumber(b.ctx, other.ID, "p2")
		requireNoError(t, err)
		requireEqual(t, before, got)
		requireHeld(t, b, theirs) // its old number was not released
	})

	t.Run("ReleasedOnChange", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		old, next := numberOf(b.company.ID, "old"), numberOf(b.company.ID, "new")
		p := phone(b, b.company.ID, "p1", old)
		requireNoError(t, b.store.PutPhoneNumber(b.ctx, p))
		p.E164, p.UpdatedAt = next, b.now.Add(time.Minute)
		requireNoError(t, b.store.PutPhoneNumber(b.ctx, p))
		requireHeld(t, b, next)
		requireFree(t, b, old)
	})

	t.Run("ReleasedOnDelete", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		n := numberOf(b.company.ID, "deleted")
		requireNoError(t, b.store.PutPhoneNumber(b.ctx, phone(b, b.company.ID, "p1", n)))
		requireNoError(t, b.store.DeletePhoneNumber(b.ctx, b.company.ID, "p1"))
		requireErrorIs(t, b.store.DeletePhoneNumber(b.ctx, b.company.ID, "p1"), comms.ErrNotFound)
		// This company may take it under another id, then it is held again.
		requireNoError(t, b.store.PutPhoneNumber(b.ctx, phone(b, b.company.ID, "p2", n)))
		requireHeld(t, b, n)
	})

	t.Run("ConcurrentPutsOneWins", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 0)
		n := numberOf(b.company.ID, "contended")
		cos := []string{b.company.ID, other.ID}
		errs := parallel(8, func(i int) error {
			return b.store.PutPhoneNumber(b.ctx, phone(b, cos[i%2], fmt.Sprintf("p%d", i), n))
		})
		ok, taken, others := count(errs, comms.ErrPhoneNumberTaken)
		if ok != 1 || taken != 7 || len(others) > 0 {
			t.Fatalf("%d puts won, %d were refused as taken, other errors %v; want exactly one winner", ok, taken, others)
		}
		held := 0
		for _, co := range cos {
			ps, err := b.store.ListPhoneNumbers(b.ctx, co)
			requireNoError(t, err)
			held += len(ps)
		}
		if held != 1 {
			t.Fatalf("%d resources hold the number, want 1", held)
		}
	})
}
