package dynamo_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

const retention = 90 * 24 * time.Hour

// retentionStore is a Store with retention on a table of its own, and its
// client to read raw items with.
func retentionStore(t *testing.T, d time.Duration) (*dynamo.Store, *dynamodb.Client, string) {
	t.Helper()
	client := newClient(t)
	table := awstest.Unique(t, "dispatcher")
	if err := dynamo.CreateTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTable(t, client, table) })
	return dynamo.New(client, table).WithRetention(d), client, table
}

// rawTTL reads the item (pk, sk) with GetItem and returns its TTL
// attribute: 0 when absent; the test fails when the item is.
func rawTTL(t *testing.T, client *dynamodb.Client, table, pk, sk string) int64 {
	t.Helper()
	out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{dynamo.AttrPK: &types.AttributeValueMemberS{Value: pk}, dynamo.AttrSK: &types.AttributeValueMemberS{Value: sk}}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		t.Fatalf("no item %s / %s", pk, sk)
	}
	v, ok := out.Item[dynamo.AttrTTL]
	if !ok {
		return 0
	}
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("%s / %s: %s is %T, want N", pk, sk, dynamo.AttrTTL, v)
	}
	ttl, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return ttl
}

func commPK(c comms.Communication) string { return "COMM#" + c.CompanyID + "#" + c.ID }
func evtSK(seq int64) string              { return fmt.Sprintf("EVT#%010d", seq) }

// epoch is the TTL of time t: its second, rounded up.
func epoch(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

// retentionCompany stores a company with credits.
func retentionCompany(t *testing.T, s *dynamo.Store, now time.Time) string {
	t.Helper()
	id := "co_" + uuid.NewString()
	if err := s.CreateCompany(t.Context(), comms.Company{ID: id, Credits: 10, Settings: comms.DefaultSettings(), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return id
}

func emailRow(companyID string, at time.Time) comms.Communication {
	return comms.Communication{
		ID: uuid.NewString(), CompanyID: companyID, Channel: comms.ChannelEmail,
		ScheduledFor: at, NextAttemptAt: at, Timezone: "UTC", MaxAttempts: 3, Source: comms.SourceAPI,
		Payload: json.RawMessage(`{"to_email":"ada@example.com","subject":"Hi","html_body":"<p>Hi</p>"}`),
	}
}

// TestRetentionTTL: on the emulator, with a retention, an open row has no
// TTL; the transition that finishes it gives the row, that transition's
// events and the provider message id's mapping the TTL terminal time +
// retention; the events written while it was open carry the bound
// (latest of their time, scheduled_for, next_attempt_at) + retention +
// OpenBound; the idempotency record keeps its own TTL.
func TestRetentionTTL(t *testing.T) {
	t.Parallel()
	s, client, table := retentionStore(t, retention)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond).Add(123 * time.Microsecond)
	co := retentionCompany(t, s, now)

	due := now.Add(time.Hour)
	create := comms.Create(emailRow(co, due), now)
	key := &comms.Idempotency{CompanyID: co, Key: "k-" + uuid.NewString(), RequestHash: "h", CommunicationID: create.Row.ID,
		CreatedAt: now, ExpiresAt: now.Add(comms.IdempotencyTTL)}
	if _, err := s.CreateCommunication(ctx, create, key); err != nil {
		t.Fatal(err)
	}
	row, err := s.GetCommunication(ctx, co, create.Row.ID)
	if err != nil {
		t.Fatal(err)
	}
	pk := commPK(row)
	if got := rawTTL(t, client, table, pk, "COMM"); got != 0 {
		t.Errorf("pending row: ttl %d, want none", got)
	}
	openBound := epoch(due.Add(retention + dynamo.OpenBound))
	if got := rawTTL(t, client, table, pk, evtSK(1)); got != openBound {
		t.Errorf("created event: ttl %d, want %d (scheduled_for + retention + OpenBound)", got, openBound)
	}
	if got, want := rawTTL(t, client, table, "IDEM#"+co+"#"+key.Key, "IDEM"), epoch(key.ExpiresAt); got != want {
		t.Errorf("idempotency record: ttl %d, want %d (its own expiry)", got, want)
	}

	claimAt := due.Add(time.Second)
	claim, err := comms.Claim(row, claimAt.Add(2*time.Minute), claimAt)
	if err != nil {
		t.Fatal(err)
	}
	if row, _, err = s.UpdateCommunication(ctx, claim, false); err != nil {
		t.Fatal(err)
	}
	if got := rawTTL(t, client, table, pk, "COMM"); got != 0 {
		t.Errorf("processing row: ttl %d, want none", got)
	}
	if got, want := rawTTL(t, client, table, pk, evtSK(2)), epoch(claimAt.Add(retention+dynamo.OpenBound)); got != want {
		t.Errorf("attempt_started event: ttl %d, want %d", got, want)
	}

	sentAt := claimAt.Add(1500 * time.Millisecond)
	sent, err := comms.RecordSent(row, "msg-"+uuid.NewString(), sentAt)
	if err != nil {
		t.Fatal(err)
	}
	if row, _, err = s.UpdateCommunication(ctx, sent, false); err != nil {
		t.Fatal(err)
	}
	want := epoch(sentAt.Add(retention))
	if got := rawTTL(t, client, table, pk, "COMM"); got != want {
		t.Errorf("sent row: ttl %d, want %d (sent + retention)", got, want)
	}
	for _, e := range sent.Events {
		if got := rawTTL(t, client, table, pk, evtSK(e.Sequence)); got != want {
			t.Errorf("%s event of the sent transition: ttl %d, want the row's %d", e.Type, got, want)
		}
	}
	if got := rawTTL(t, client, table, "PMID#"+row.ProviderMessageID, "PMID"); got != want {
		t.Errorf("provider message id map: ttl %d, want the row's %d", got, want)
	}
	if got := rawTTL(t, client, table, pk, evtSK(1)); got != openBound || got < want {
		t.Errorf("created event after the row finished: ttl %d, want %d (not before the row's %d)", got, openBound, want)
	}
	// The row reads back the same; TTL is no part of it.
	if got, err := s.GetCommunication(ctx, co, row.ID); err != nil || got.Status != comms.StatusSent {
		t.Fatalf("GetCommunication: %+v, %v", got, err)
	}
}

// TestRetentionCancelAndCadenceRoot: a cancelled row gets cancel time +
// retention; the root of a voice cadence that may still lead to follow-ups
// (which read its creation time) is kept one cadence step per follow-up
// longer; without a retention nothing carries a TTL.
func TestRetentionCancelAndCadenceRoot(t *testing.T) {
	t.Parallel()
	s, client, table := retentionStore(t, retention)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	co := retentionCompany(t, s, now)
	cancelAt := now.Add(time.Minute)

	cancel := func(s *dynamo.Store, r comms.Communication) comms.Communication {
		t.Helper()
		if _, err := s.CreateCommunication(ctx, comms.Create(r, now), nil); err != nil {
			t.Fatal(err)
		}
		row, err := s.GetCommunication(ctx, r.CompanyID, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := comms.Cancel(row, comms.CancelReason("api"), cancelAt)
		if err != nil {
			t.Fatal(err)
		}
		if row, _, err = s.UpdateCommunication(ctx, ch, false); err != nil {
			t.Fatal(err)
		}
		return row
	}

	email := cancel(s, emailRow(co, now.Add(time.Hour)))
	want := epoch(cancelAt.Add(retention))
	if got := rawTTL(t, client, table, commPK(email), "COMM"); got != want {
		t.Errorf("cancelled row: ttl %d, want %d", got, want)
	}
	if got := rawTTL(t, client, table, commPK(email), evtSK(email.EventSeq)); got != want {
		t.Errorf("cancelled event: ttl %d, want %d", got, want)
	}

	voice := emailRow(co, now.Add(time.Hour))
	voice.Channel = comms.ChannelVoice
	voice.Payload = json.RawMessage(`{"voice_agent_outbound_config_id":"a1","to_number":"+61412345678"}`)
	voice.Cadence = &comms.Cadence{RootID: voice.ID, Attempt: 1, MaxAttempts: 3}
	root := cancel(s, voice)
	step := contract.MaxFollowUpHours*time.Hour + dynamo.OpenBound
	want = epoch(cancelAt.Add(retention + 2*step))
	if got := rawTTL(t, client, table, commPK(root), "COMM"); got != want {
		t.Errorf("cadence root: ttl %d, want %d (retention + 2 cadence steps)", got, want)
	}

	follow := voice
	follow.ID = uuid.NewString()
	follow.Source = comms.SourceCadence
	follow.Cadence = &comms.Cadence{RootID: voice.ID, Attempt: 2, MaxAttempts: 3}
	follow = cancel(s, follow)
	if got, want := rawTTL(t, client, table, commPK(follow), "COMM"), epoch(cancelAt.Add(retention)); got != want {
		t.Errorf("follow-up: ttl %d, want %d (retention only)", got, want)
	}

	// Without a retention: no TTL on rows or events.
	keep, client2, table2 := retentionStore(t, 0)
	co2 := retentionCompany(t, keep, now)
	kept := cancel(keep, emailRow(co2, now.Add(time.Hour)))
	for _, sk := range []string{"COMM", evtSK(1), evtSK(kept.EventSeq)} {
		if got := rawTTL(t, client2, table2, commPK(kept), sk); got != 0 {
			t.Errorf("without retention, %s: ttl %d, want none", sk, got)
		}
	}
}
