package dispatch_test

import (
	"slices"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// quiet sets acme's quiet hours (and whether zones come from numbers),
// keeping the rest of its settings.
func (b *bundle) quiet(q comms.QuietHours, fromNumber bool) {
	b.t.Helper()
	co, err := b.store.GetCompany(b.ctx, "acme")
	if err != nil {
		b.t.Fatal(err)
	}
	co.Settings.QuietHours, co.Settings.TimezoneFromPhoneNumber = q, fromNumber
	if err := b.store.PutSettings(b.ctx, "acme", co.Settings); err != nil {
		b.t.Fatal(err)
	}
}

// TestQuietHoursSetAfterCreateDeferAtFireTime: a row created before the
// company set SMS quiet hours is held at fire time — deferred (reason
// quiet_hours) to the window's start and armed for it, whatever
// respect_business_hours says — and sent then.
func TestQuietHoursSetAfterCreateDeferAtFireTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	row := b.create("sms", time.Minute, "") // Wednesday 10:01 UTC, company zone UTC
	b.quiet(comms.QuietHours{SMS: &comms.ClockWindow{Start: "14:00", End: "18:00"}}, false)
	got := b.fire(row.ID)
	want := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	if got.Status != comms.StatusPending || !got.NextAttemptAt.Equal(want) || b.senders.sends(row.ID) != 0 {
		t.Fatalf("held row: %s next %v, %d sends", got.Status, got.NextAttemptAt, b.senders.sends(row.ID))
	}
	if h := b.history(row.ID); h != "created,deferred" {
		t.Fatalf("history %s", h)
	}
	if d := b.lastData(row.ID); d["reason"] != "quiet_hours" || d["next_attempt_at"] != "2026-12-02T14:00:00Z" {
		t.Fatalf("deferred data %v", d)
	}
	if a := b.timer.last(); a.f != comms.FireOf(got) || !a.at.Equal(want) {
		t.Fatalf("armed %+v at %v", a.f, a.at)
	}
	if sent := b.fire(row.ID); sent.Status != comms.StatusSent || !sent.SentAt.Equal(want) {
		t.Fatalf("at the window's start: %s sent at %v", sent.Status, sent.SentAt)
	}
}

// TestRetryBackoffIntoQuietHoursIsDeferred: a retry whose backoff lands
// after the window closes is deferred to the next day's opening, not
// attempted at night.
func TestRetryBackoffIntoQuietHoursIsDeferred(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.quiet(comms.QuietHours{SMS: &comms.ClockWindow{Start: "08:00", End: "10:02"}}, false)
	b.senders.result = func(_, _ string, attempt int) error {
		if attempt < 3 {
			return comms.Transient("throttled", "slow down")
		}
		return nil
	}
	row := b.create("sms", time.Minute, "") // 10:01, inside 08:00–10:02
	b.fire(row.ID)                          // attempt 1 fails: retry at 10:01:30, inside
	got := b.fire(row.ID)                   // attempt 2 fails: retry at 10:02:30, outside
	if got.AttemptCount != 2 || !got.NextAttemptAt.Equal(time.Date(2026, 12, 2, 10, 2, 30, 0, time.UTC)) {
		t.Fatalf("after two attempts: %d, next %v", got.AttemptCount, got.NextAttemptAt)
	}
	got = b.fire(row.ID)
	tomorrow := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	if got.Status != comms.StatusPending || got.AttemptCount != 2 || !got.NextAttemptAt.Equal(tomorrow) {
		t.Fatalf("retry outside the window: %s attempt %d next %v", got.Status, got.AttemptCount, got.NextAttemptAt)
	}
	if h := b.history(row.ID); h != "created,attempt_started,attempt_failed,attempt_started,attempt_failed,deferred" {
		t.Fatalf("history %s", h)
	}
	if sent := b.fire(row.ID); sent.Status != comms.StatusSent || sent.AttemptCount != 3 || !sent.SentAt.Equal(tomorrow) {
		t.Fatalf("next morning: %s attempt %d at %v", sent.Status, sent.AttemptCount, sent.SentAt)
	}
}

// TestQuietHoursCountForMaxDelay: a row held by quiet hours from the start
// is due when they open, so cancel_policy.max_delay_minutes counts from
// there and it is sent, not expired.
func TestQuietHoursCountForMaxDelay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.quiet(comms.QuietHours{Email: &comms.ClockWindow{Start: "14:00", End: "18:00"}}, false)
	row := b.create("email", time.Minute, `{"cancel_policy":{"max_delay_minutes":30}}`)
	if want := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC); !row.NextAttemptAt.Equal(want) {
		t.Fatalf("next_attempt_at %v, want %v", row.NextAttemptAt, want)
	}
	b.clock.Set(time.Date(2026, 12, 2, 14, 20, 0, 0, time.UTC))
	if got := b.fire(row.ID); got.Status != comms.StatusSent {
		t.Fatalf("20 minutes after the window opened: %s %+v", got.Status, got.LastError)
	}
}

// TestNoInstantAllowedFailsAtDispatch: windows that the recipient's zones
// never share (08:00–09:00 in Boise and in Los Angeles) fail the row at
// fire time, saying why, without a call.
func TestNoInstantAllowedFailsAtDispatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.quiet(comms.QuietHours{}, true)
	row := b.create("voice", time.Minute, `{"payload":{"to_number":"+12085550123"}}`)
	if !slices.Equal(row.Timezones, []string{"America/Boise", "America/Los_Angeles"}) {
		t.Fatalf("zones %v", row.Timezones)
	}
	b.quiet(comms.QuietHours{VoiceCall: &comms.ClockWindow{Start: "08:00", End: "09:00"}}, true)
	got := b.fire(row.ID)
	if got.Status != comms.StatusFailed || got.LastError == nil || got.LastError.Code != "quiet_hours_closed" || b.senders.sends(row.ID) != 0 {
		t.Fatalf("row %s %+v, %d calls", got.Status, got.LastError, b.senders.sends(row.ID))
	}
}

// TestFollowUpRespectsQuietHours: a cadence's follow-up is placed by its
// own to_number's zones under the settings in force when it is created:
// 20 h after a call at Wednesday 10:01 UTC is Wednesday 23:01 in Boise,
// so it waits for the later opening of Boise and Los Angeles, 08:00 Los
// Angeles on Thursday (16:00 UTC).
func TestFollowUpRespectsQuietHours(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"payload":{"follow_ups":{"max_attempts":2,"follow_up_delays":[20],"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+12085550123"}}}`
	root := b.fire(b.create("voice", time.Minute, body).ID)
	b.quiet(comms.QuietHours{VoiceCall: &comms.ClockWindow{Start: "08:00", End: "21:00"}}, true)
	f := b.get(b.outcome(root, 0).FollowUpID)
	want := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	if f.RespectBusinessHours || !f.NextAttemptAt.Equal(want) || !f.ScheduledFor.Equal(root.SentAt.Add(20*time.Hour)) ||
		f.TimezoneSource != comms.TimezoneFromPhoneNumber || !slices.Equal(f.Timezones, []string{"America/Boise", "America/Los_Angeles"}) {
		t.Fatalf("follow-up next %v (want %v), zones %s %v", f.NextAttemptAt, want, f.TimezoneSource, f.Timezones)
	}
}
