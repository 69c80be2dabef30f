package dynamo

import (
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Retention: a finished row, its events and its provider message id's
// mapping carry AttrTTL, so that DynamoDB TTL deletes them (some time, up
// to a few days, after the second it names). With a retention of zero (the
// default of New) nothing of a row carries it and rows are kept forever.
//
//   - A terminal row's item carries UpdatedAt + retention (+ cadenceTail
//     for a voice cadence's root), recomputed on every write: a later
//     write of a finished row (a delivery report, a call's outcome)
//     pushes it back. An open row carries none, so it is never deleted
//     while it can still be sent.
//   - An event written with the row's terminal transition, or later,
//     carries exactly the row's TTL. An event written while the row is
//     open cannot know when the row will finish, and is never rewritten:
//     it carries the latest of its time, the row's scheduled_for and
//     next_attempt_at, plus retention, OpenBound (and cadenceTail for a
//     root). It outlives its
//     row by at most OpenBound; it dies before its row only if the row
//     stays open longer than OpenBound after that moment, or is written
//     again that long after it finished.
//   - The provider message id's mapping, written with the sent
//     transition, carries the row's TTL then.
//   - Idempotency records keep their own TTL (comms.IdempotencyTTL after
//     the request, 24 h): always before their row's, as retention is at
//     least a day.
const (
	// OpenBound is how long after its scheduled time (or next attempt) a
	// row is assumed to finish, for the TTL of the events written while it
	// is open. Nothing in the lifecycle lasts that long: retries, leases
	// and business-hours deferrals are minutes to days.
	OpenBound = 30 * 24 * time.Hour
	// cadenceStep is the most one follow-up of a voice cadence can add to
	// the cadence after the previous attempt finished: its delay (at most
	// comms.MaxFollowUpHours), then at most OpenBound open.
	cadenceStep = comms.MaxFollowUpHours*time.Hour + OpenBound
)

// WithRetention makes the store give a terminal row, and what follows it,
// a TTL of d after the row's last write (see OpenBound); d ≤ 0 means never.
// Call it before the store is used.
func (s *Store) WithRetention(d time.Duration) *Store {
	s.retention = max(d, 0)
	return s
}

// cadenceTail is how much longer than others a cadence's root is kept: a
// follow-up reads its root (the cadence's start, comms.CancellingEvent), so
// the root must outlive every follow-up it may still lead to.
func cadenceTail(c comms.Communication) time.Duration {
	if c.Cadence == nil || c.Cadence.RootID != c.ID || c.Cadence.MaxAttempts <= 1 {
		return 0
	}
	return time.Duration(c.Cadence.MaxAttempts-1) * cadenceStep
}

// rowTTL is the TTL of c's item: 0 (none) while c is open, or when the
// store keeps everything.
func (s *Store) rowTTL(c comms.Communication) int64 {
	if s.retention <= 0 || !c.Status.Terminal() {
		return 0
	}
	at := c.UpdatedAt
	if at.IsZero() {
		at = time.Now()
	}
	return ttlSeconds(at.Add(s.retention + cadenceTail(c)))
}

// eventTTL is the TTL of event e written with row c: the row's when the
// row is terminal, else the bound described above.
func (s *Store) eventTTL(e comms.Event, c comms.Communication) int64 {
	if s.retention <= 0 {
		return 0
	}
	if ttl := s.rowTTL(c); ttl > 0 {
		return ttl
	}
	at := e.At
	for _, t := range []time.Time{c.ScheduledFor, c.NextAttemptAt} {
		if t.After(at) {
			at = t
		}
	}
	return ttlSeconds(at.Add(s.retention + OpenBound + cadenceTail(c)))
}

// bodyBucket is the step of a payload item's TTL (bodyTTL): rows whose
// lifecycle stays within one step keep the body's TTL they were created
// with, so that their payload item is written once.
const bodyBucket = int64(OpenBound / time.Second)

// bodyTTL is the TTL of the payload item of c as written now (0: none):
// the row's TTL, or for an open row the latest of its last write,
// scheduled_for, next_attempt_at and lease plus retention (and cadenceTail),
// rounded up to the next bodyBucket step and one step more. So the payload
// outlives its row by between one and two steps (30–60 days), whatever
// transitions come while the row's need stays in the step it was written
// for; a write whose need moves to another step (a row open a month, a
// reschedule by months, a very late delivery report) writes the payload
// item again with its new TTL (see bodyRef).
func (s *Store) bodyTTL(c comms.Communication) int64 {
	if s.retention <= 0 {
		return 0
	}
	need := s.rowTTL(c)
	if need == 0 {
		at := c.UpdatedAt
		for _, t := range []time.Time{c.ScheduledFor, c.NextAttemptAt, c.LeaseUntil} {
			if t.After(at) {
				at = t
			}
		}
		need = ttlSeconds(at.Add(s.retention + cadenceTail(c)))
	}
	return (need/bodyBucket + 2) * bodyBucket
}
