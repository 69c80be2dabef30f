package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
)

// reportDelay is how long after a send the dev senders' provider reports
// (SES events, SNS delivery status) arrive: a moment, as with SES.
const reportDelay = 300 * time.Millisecond

// reportingSenders are the dev email and SMS senders of the embedded mode:
// the outbox sends, and once reportDelay has passed on the clock, the
// reports the real provider would publish about the send (devsink's
// EmailReports and SMSReports) are parsed and recorded by the same code as
// the AWS events function: feedback.ParseSESEvent / ParseSMSDeliveryLog,
// then feedback.Recorder. Reports wait in one queue, in the order of their
// sends, and one goroutine records all those due at once with RecordBatch:
// a burst of sends is recorded a few reads and writes per batch, not two
// reads and a write per email.
type reportingSenders struct {
	outbox   *devsink.Outbox
	recorder func() *feedback.Recorder // the graph's, once built
	clock    clock.Clock
	log      *slog.Logger
	stop     chan struct{}
	stopOnce sync.Once
	pending  sync.WaitGroup

	mu       sync.Mutex
	queue    []queuedReports // in send order, so in due order
	draining bool            // the drain goroutine runs
}

// queuedReports are one send's reports, due at due.
type queuedReports struct {
	due     time.Time
	reports []devsink.Report
}

var (
	_ dispatch.EmailSender = (*reportingSenders)(nil)
	_ dispatch.SMSSender   = (*reportingSenders)(nil)
)

func (s *reportingSenders) SendEmail(ctx context.Context, m dispatch.Email) (string, error) {
	id, err := s.outbox.SendEmail(ctx, m)
	if err == nil {
		s.later(devsink.EmailReports(m, id, s.clock.Now()))
	}
	return id, err
}

func (s *reportingSenders) SendSMS(ctx context.Context, m dispatch.SMS) (string, error) {
	id, err := s.outbox.SendSMS(ctx, m)
	if err == nil {
		s.later(devsink.SMSReports(m, id, s.clock.Now()))
	}
	return id, err
}

// later records reports, in order, once reportDelay has passed, or at once
// when the process stops first (close): a stop loses no report. A crash
// does; the next start replays them from the outbox (replay).
func (s *reportingSenders) later(reports []devsink.Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, queuedReports{due: s.clock.Now().Add(reportDelay), reports: reports})
	if !s.draining {
		s.draining = true
		s.pending.Go(s.drain)
	}
}

// drainBatch bounds the reports recorded in one RecordBatch.
const drainBatch = 512

// drain records the queue's reports as they come due, those due together
// in one batch, and returns once the queue is empty.
func (s *reportingSenders) drain() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.draining = false
			s.mu.Unlock()
			return
		}
		head := s.queue[0].due
		s.mu.Unlock()
		due, release := s.clock.Alarm(head)
		stopped := false
		select {
		case <-due:
		case <-s.stop:
			release()
			stopped = true
		}
		now := s.clock.Now()
		s.mu.Lock()
		n, reports := 0, 0
		for n < len(s.queue) && reports < drainBatch && (stopped || !s.queue[n].due.After(now)) {
			reports += len(s.queue[n].reports)
			n++
		}
		batch := slices.Clone(s.queue[:n])
		s.queue = slices.Delete(s.queue, 0, n)
		s.mu.Unlock()
		var all []devsink.Report
		for _, q := range batch {
			all = append(all, q.reports...)
		}
		s.recordAll(all)
	}
}

// replayWindow is how far back from its last line a start replays the
// outbox's reports. A crash loses only the reports of the sends of its
// last reportDelay (plus what the store's retries took); a minute covers
// them with room, and costs one read per report already recorded.
const replayWindow = time.Minute

// replay records again the reports of the sends in the outbox's last
// replayWindow, oldest first: those a crash (kill -9) took before they were
// recorded are recorded now, and the others record nothing new (reports are
// idempotent, as SES and SNS redeliveries must be). It returns how many
// reports it read.
func (s *reportingSenders) replay() (int, error) {
	lines, err := devsink.ReadOutboxTail(s.outbox.Path(), replayWindow)
	if err != nil {
		return 0, fmt.Errorf("devsink.ReadOutboxTail: %w", err)
	}
	var reports []devsink.Report
	for _, l := range lines {
		reports = append(reports, l.Reports()...)
	}
	for chunk := range slices.Chunk(reports, drainBatch) {
		s.recordAll(chunk)
	}
	return len(reports), nil
}

// recordAll parses reports as the AWS events function does and records
// them in one batch, in order; a report the store failed to record is
// tried twice more on its own (a busy store: the real queue would
// redeliver).
func (s *reportingSenders) recordAll(reports []devsink.Report) {
	items := make([]feedback.Item, 0, len(reports))
	for _, r := range reports {
		var (
			it  feedback.Item
			err error
		)
		switch r.Kind {
		case devsink.ReportSESEvent:
			it.Target, it.Report, err = feedback.ParseSESEvent(r.Body)
		case devsink.ReportSMSDeliveryLog:
			it.Target, it.Report, err = feedback.ParseSMSDeliveryLog(r.Body)
		}
		if err != nil {
			s.log.Warn("dev provider report not parsed", "kind", string(r.Kind), "error", err.Error())
			continue
		}
		items = append(items, it)
	}
	ctx := context.Background()
	_, errs := s.recorder().RecordBatch(ctx, items)
	for i, err := range errs {
		for try := 1; err != nil && !errors.Is(err, context.Canceled) && try < 3; try++ {
			_, err = s.recorder().Record(ctx, items[i].Target, items[i].Report)
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("dev provider report not recorded", "communication_id", items[i].Target.CommunicationID, "error", err.Error())
		}
	}
}

// close records the reports not yet due at once and waits for them.
func (s *reportingSenders) close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.pending.Wait()
}
