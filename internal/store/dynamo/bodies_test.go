package dynamo_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// TestLargePayloadsLiveInTheirOwnItem: a payload above InlinePayloadMax is
// written once with the row and read back by every row read (get, due,
// list); transitions rewrite only the row; an edit of the payload writes
// it again; a payload that shrinks goes back into the row; the body item's
// TTL is never before the row's.
func TestLargePayloadsLiveInTheirOwnItem(t *testing.T) {
	e := newLifecycleEnv(t)
	ctx := e.ctx
	big := func(fill string) json.RawMessage {
		return payloadOf(t, comms.EmailPayload{ToEmail: "sarah@example.com", Subject: "s", HTMLBody: strings.Repeat(fill, 200_000)})
	}
	row := comms.Communication{ID: e.id(), CompanyID: e.co, Channel: comms.ChannelEmail, ScheduledFor: e.now.Add(time.Hour),
		NextAttemptAt: e.now.Add(time.Hour), MaxAttempts: 3, Source: comms.SourceAPI, Payload: big("a")}
	must[int64](t)(e.store.CreateCommunication(ctx, comms.Create(row, e.now), nil))
	got := must[comms.Communication](t)(e.store.GetCommunication(ctx, e.co, row.ID))
	if !bytes.Equal(got.Payload, row.Payload) {
		t.Fatalf("payload read back: %d bytes, want %d", len(got.Payload), len(row.Payload))
	}
	// A create of the same id with another payload replaces nothing: its
	// body's Put (outside the transaction) is conditioned on the partition.
	other := row
	other.Payload = big("z")
	if _, err := e.store.CreateCommunication(ctx, comms.Create(other, e.now), nil); !errors.Is(err, comms.ErrAlreadyExists) {
		t.Fatalf("second create of %s: %v, want ErrAlreadyExists", row.ID, err)
	}
	if got := must[comms.Communication](t)(e.store.GetCommunication(ctx, e.co, row.ID)); !bytes.Equal(got.Payload, row.Payload) {
		t.Fatal("a refused create replaced the row's payload")
	}
	raw := func(sk string) map[string]types.AttributeValue {
		out, err := e.meter.raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.meter.tbl), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{dynamo.AttrPK: &types.AttributeValueMemberS{Value: "COMM#" + e.co + "#" + row.ID},
				dynamo.AttrSK: &types.AttributeValueMemberS{Value: sk}}})
		requireNoErr(t, err)
		return out.Item
	}
	if r := raw("COMM"); r["payload"] != nil || r["body_ref"] == nil || itemSize(r) > 1024 {
		t.Fatalf("row item holds its payload or no body_ref (%d bytes)", itemSize(r))
	}
	e.meter.take()
	claimed := e.update(t)(comms.Claim(got, e.now.Add(time.Hour+2*time.Minute), e.now.Add(time.Hour)))
	if u := e.meter.take(); u.Items != 2 || u.WRU() > 12 {
		t.Errorf("claim wrote %d items, %.0f WRU: want the row and its event only", u.Items, u.WRU())
	}
	if !bytes.Equal(claimed.Payload, row.Payload) {
		t.Error("the stored row returned by the claim lost its payload")
	}
	due := must[[]comms.Communication](t)(e.store.DueCommunications(ctx, e.now.Add(3*time.Hour), 10))
	if len(due) != 1 || !bytes.Equal(due[0].Payload, row.Payload) {
		t.Errorf("due rows: %d, payload read back %v", len(due), len(due) == 1 && bytes.Equal(due[0].Payload, row.Payload))
	}
	released := e.update(t)(comms.ReleaseExpiredLease(claimed, e.now.Add(time.Hour+3*time.Minute)))

	// An edit of the payload is written with its body, and read back.
	next := released
	next.Payload = big("b")
	edited := e.update(t)(comms.Reschedule(released, next, e.now.Add(2*time.Hour)))
	// The meter counts successful writes: the release (row, event), then
	// the edit repeated with its body (row, event, body).
	if u := e.meter.take(); u.Items != 2+3 {
		t.Errorf("release and edit wrote %d items, want 5 (the edit with its body)", u.Items)
	}
	if got := must[comms.Communication](t)(e.store.GetCommunication(ctx, e.co, row.ID)); !bytes.Equal(got.Payload, next.Payload) {
		t.Fatal("the edited payload was not stored")
	}
	list := must[[]comms.Communication](t)(func() ([]comms.Communication, error) {
		rows, _, err := e.store.ListCommunications(ctx, e.co, comms.ListFilter{Limit: 10})
		return rows, err
	}())
	if len(list) != 1 || !bytes.Equal(list[0].Payload, next.Payload) {
		t.Errorf("listing: %d rows, payload read back %v", len(list), len(list) == 1 && bytes.Equal(list[0].Payload, next.Payload))
	}
	// The body's TTL covers the finished row's.
	cancelled := e.update(t)(comms.Cancel(edited, comms.CancelAPI, e.now.Add(3*time.Hour)))
	if !bytes.Equal(cancelled.Payload, next.Payload) {
		t.Error("cancel lost the payload")
	}
	rowTTL, bodyTTL := raw("COMM")["ttl"], raw("BODY")["ttl"]
	if rowTTL == nil || bodyTTL == nil || num(t, bodyTTL) < num(t, rowTTL) {
		t.Errorf("body TTL %v before the row's %v", bodyTTL, rowTTL)
	}
}

func num(t *testing.T, v types.AttributeValue) int64 {
	var n int64
	_, err := fmt.Sscan(v.(*types.AttributeValueMemberN).Value, &n)
	requireNoErr(t, err)
	return n
}

// TestListingOnATableOfBeforeIssue14: a table whose by_company projects ALL
// (every stack deployed before issue 14, which CloudFormation cannot
// change in place) is accepted, and listings on it read the same rows.
func TestListingOnATableOfBeforeIssue14(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	table := awstest.Unique(t, "oldlisting")
	in := dynamo.TableInput(table)
	in.GlobalSecondaryIndexes[0].Projection = &types.Projection{ProjectionType: types.ProjectionTypeAll}
	if aws.ToString(in.GlobalSecondaryIndexes[0].IndexName) != dynamo.IndexByCompany {
		t.Fatal("TableInput's first index is not by_company")
	}
	if _, err := client.CreateTable(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTable(t, client, table) })
	requireNoErr(t, dynamo.CreateTable(t.Context(), client, table))
	s := dynamo.New(client, table).WithRetention(retention)
	ctx, co, now := t.Context(), "co_old", time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	requireNoErr(t, s.CreateCompany(ctx, comms.Company{ID: co, Credits: 10, Settings: comms.DefaultSettings(), CreatedAt: now}))
	var ids []string
	for i, html := range []string{"short", strings.Repeat("long ", 1000), "short again"} {
		row := comms.Communication{ID: fmt.Sprintf("0193a1b2-c3d4-7e5f-8a9b-00000000000%d", i), CompanyID: co, Channel: comms.ChannelEmail,
			ScheduledFor: now.Add(time.Duration(i+1) * time.Hour), NextAttemptAt: now.Add(time.Duration(i+1) * time.Hour), MaxAttempts: 3,
			Source: comms.SourceAPI, Payload: payloadOf(t, comms.EmailPayload{ToEmail: "a@example.com", Subject: "s", HTMLBody: html})}
		must[int64](t)(s.CreateCommunication(ctx, comms.Create(row, now), nil))
		ids = append(ids, row.ID)
	}
	first := must[comms.Communication](t)(s.GetCommunication(ctx, co, ids[0]))
	e := &lifecycleEnv{ctx: ctx, store: s}
	e.update(t)(comms.Cancel(first, comms.CancelAPI, now.Add(time.Minute)))
	rows, more, err := s.ListCommunications(ctx, co, comms.ListFilter{Status: comms.StatusPending, Limit: 1})
	requireNoErr(t, err)
	if len(rows) != 1 || rows[0].ID != ids[1] || !more || !strings.Contains(string(rows[0].Payload), "long long") {
		t.Fatalf("pending, limit 1: %d rows (more %v), want %s with its payload", len(rows), more, ids[1])
	}
	rows, _, err = s.ListCommunications(ctx, co, comms.ListFilter{After: &comms.Cursor{ScheduledFor: rows[0].ScheduledFor, ID: rows[0].ID}, Status: comms.StatusPending})
	requireNoErr(t, err)
	if len(rows) != 1 || rows[0].ID != ids[2] {
		t.Fatalf("after the cursor: %d rows, want %s", len(rows), ids[2])
	}
}
