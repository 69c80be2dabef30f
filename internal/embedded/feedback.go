package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
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
// then feedback.Recorder.Record.
type reportingSenders struct {
	outbox   *devsink.Outbox
	recorder func() *feedback.Recorder // the graph's, once built
	clock    clock.Clock
	log      *slog.Logger
	stop     chan struct{}
	stopOnce sync.Once
	pending  sync.WaitGroup
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
	due, release := s.clock.Alarm(s.clock.Now().Add(reportDelay))
	s.pending.Go(func() {
		select {
		case <-due:
		case <-s.stop:
			release()
		}
		for _, r := range reports {
			s.record(r)
		}
	})
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
	n := 0
	for _, l := range lines {
		for _, r := range l.Reports() {
			s.record(r)
			n++
		}
	}
	return n, nil
}

// record parses one report as the AWS events function does and records it.
func (s *reportingSenders) record(r devsink.Report) {
	var (
		t   feedback.Target
		rep comms.DeliveryReport
		err error
	)
	switch r.Kind {
	case devsink.ReportSESEvent:
		t, rep, err = feedback.ParseSESEvent(r.Body)
	case devsink.ReportSMSDeliveryLog:
		t, rep, err = feedback.ParseSMSDeliveryLog(r.Body)
	}
	if err != nil {
		s.log.Warn("dev provider report not parsed", "kind", string(r.Kind), "error", err.Error())
		return
	}
	ctx := context.Background()
	for try := 0; try < 3; try++ { // a busy store: the real queue would redeliver
		if _, err = s.recorder().Record(ctx, t, rep); err == nil || errors.Is(err, context.Canceled) {
			return
		}
	}
	s.log.Warn("dev provider report not recorded", "communication_id", t.CommunicationID, "error", err.Error())
}

// close records the reports not yet due at once and waits for them.
func (s *reportingSenders) close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.pending.Wait()
}
