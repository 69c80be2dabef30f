package dynamo_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// reopening is a store client that, just before the backfill's update of
// one row, writes that row again as open (pending, next version), as a
// row written between the scan and the update would be.
type reopening struct {
	dynamo.API
	client *dynamodb.Client
	table  string
	pk     string
	once   sync.Once
}

func (r *reopening) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if pk, _ := in.Key[dynamo.AttrPK].(*types.AttributeValueMemberS); pk != nil && pk.Value == r.pk &&
		in.Key[dynamo.AttrSK].(*types.AttributeValueMemberS).Value == "COMM" {
		r.once.Do(func() {
			if _, err := r.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(r.table), Key: in.Key,
				UpdateExpression:          aws.String("SET #st = :p, #v = #v + :one"),
				ExpressionAttributeNames:  map[string]string{"#st": "status", "#v": "version"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "pending"}, ":one": &types.AttributeValueMemberN{Value: "1"}},
			}); err != nil {
				panic(err)
			}
		})
	}
	return r.API.UpdateItem(ctx, in, optFns...)
}

// partitionTTLs returns the TTL of every item of a partition by sort key
// (0: none).
func partitionTTLs(t *testing.T, client *dynamodb.Client, table, pk string) map[string]int64 {
	t.Helper()
	out, err := client.Query(t.Context(), &dynamodb.QueryInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, it := range out.Items {
		sk := it[dynamo.AttrSK].(*types.AttributeValueMemberS).Value
		m[sk] = rawTTL(t, client, table, pk, sk)
	}
	return m
}

// dropTTL removes the TTL of every item of a partition, as if it had been
// written before retention existed.
func dropTTL(t *testing.T, client *dynamodb.Client, table, pk string) {
	t.Helper()
	for sk := range partitionTTLs(t, client, table, pk) {
		if _, err := client.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{TableName: aws.String(table),
			Key:              map[string]types.AttributeValue{dynamo.AttrPK: &types.AttributeValueMemberS{Value: pk}, dynamo.AttrSK: &types.AttributeValueMemberS{Value: sk}},
			UpdateExpression: aws.String("REMOVE #ttl"), ExpressionAttributeNames: map[string]string{"#ttl": dynamo.AttrTTL}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackfill: on the emulator, rows written by a store without
// retention (and a row whose TTLs were removed) get, from Backfill, the
// TTL the store's rules give them: a terminal row updated_at + retention
// (+ the cadence tail of a root), its events and provider message id map
// the same, its payload item the bucketed bodyTTL; an open row none, its
// events the open bound. A dry run writes nothing; a resumed run ends
// where one run would; a second run updates nothing; a row written open
// between the scan and the update is not touched.
func TestBackfill(t *testing.T) {
	t.Parallel()
	s, client, table := retentionStore(t, retention)
	old := dynamo.New(client, table) // the store before retention: no TTL anywhere
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	co := retentionCompany(t, s, now)

	create := func(st *dynamo.Store, r comms.Communication) comms.Communication {
		t.Helper()
		if _, err := st.CreateCommunication(ctx, comms.Create(r, now), nil); err != nil {
			t.Fatal(err)
		}
		row, err := st.GetCommunication(ctx, r.CompanyID, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		return row
	}
	update := func(st *dynamo.Store) func(comms.Change, error) comms.Communication {
		return func(ch comms.Change, err error) comms.Communication {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			row, _, err := st.UpdateCommunication(ctx, ch, false)
			if err != nil {
				t.Fatal(err)
			}
			return row
		}
	}
	send := func(st *dynamo.Store, r comms.Communication, at time.Time) comms.Communication {
		t.Helper()
		row := create(st, r)
		row = update(st)(comms.Claim(row, at.Add(2*time.Minute), at))
		return update(st)(comms.RecordSent(row, "msg-"+uuid.NewString(), at.Add(time.Second)))
	}
	due := now.Add(time.Hour)

	// A sent email with a payload item and a message id map.
	big := emailRow(co, due)
	big.Payload = json.RawMessage(`{"to_email":"ada@example.com","subject":"Hi","html_body":"<p>` + strings.Repeat("x", 2*dynamo.InlinePayloadMax) + `</p>"}`)
	sent := send(old, big, due.Add(time.Second))
	// A cancelled cadence root, kept two cadence steps longer.
	voice := emailRow(co, due)
	voice.Channel = comms.ChannelVoice
	voice.Payload = json.RawMessage(`{"voice_agent_outbound_config_id":"a1","to_number":"+61412345678"}`)
	voice.Cadence = &comms.Cadence{RootID: voice.ID, Attempt: 1, MaxAttempts: 3}
	root := create(old, voice)
	root = update(old)(comms.Cancel(root, comms.CancelReason("api"), now.Add(time.Minute)))
	// An open row.
	open := create(old, emailRow(co, due))
	// A row written with retention whose TTLs were then removed.
	stamped := send(s, emailRow(co, due), due.Add(2*time.Second))
	was := partitionTTLs(t, client, table, commPK(stamped))
	pmidWas := rawTTL(t, client, table, "PMID#"+stamped.ProviderMessageID, "PMID")
	dropTTL(t, client, table, commPK(stamped))
	dropTTL(t, client, table, "PMID#"+stamped.ProviderMessageID)
	// A finished row that is written open again between scan and update.
	reopened := send(old, emailRow(co, due), due.Add(3*time.Second))

	rowTTL := func(c comms.Communication) int64 { return epoch(c.UpdatedAt.Add(retention)) }
	bucket := int64(dynamo.OpenBound / time.Second)
	bodyTTL := func(c comms.Communication) int64 { return (rowTTL(c)/bucket + 2) * bucket }

	// Dry run: counts, writes nothing.
	dry, err := s.Backfill(ctx, client, dynamo.BackfillOptions{Segments: 3, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !dry.Complete || dry.Updated == 0 || dry.Next != nil {
		t.Fatalf("dry run: %+v", dry)
	}
	if got := rawTTL(t, client, table, commPK(sent), "COMM"); got != 0 {
		t.Fatalf("dry run wrote a TTL %d", got)
	}

	// A run stopped after its first page, then resumed from its report,
	// through a client that writes one finished row open again just
	// before its update.
	st := dynamo.New(&reopening{API: client, client: client, table: table, pk: commPK(reopened)}, table).WithRetention(retention)
	stopAt, stop := context.WithCancel(ctx)
	first, err := st.Backfill(stopAt, client, dynamo.BackfillOptions{Segments: 1, PageSize: 2,
		Progress: func(dynamo.BackfillReport) { stop() }})
	if err == nil || first.Complete || first.Next == nil || len(first.Next.Segments) != 1 {
		t.Fatalf("stopped run: %+v, %v; want an error and where to resume", first, err)
	}
	rest, err := st.Backfill(ctx, client, dynamo.BackfillOptions{Start: first.Next, PageSize: 2, MaxWCU: 1000, MaxRCU: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !rest.Complete || first.ConditionalFailures+rest.ConditionalFailures != 1 {
		t.Errorf("resumed run: %+v; want complete with the reopened row's failed condition", rest)
	}
	// Every item the dry run counted is updated once, but the reopened
	// row, and its message id map when the scan reached it after the row
	// was reopened (it follows an open row then: none).
	wantUpdated := dry.Updated - 1
	if rawTTL(t, client, table, "PMID#"+reopened.ProviderMessageID, "PMID") == 0 {
		wantUpdated--
	}
	if total := first.Updated + rest.Updated; total != wantUpdated {
		t.Errorf("updated %d + %d, want %d (the dry run's %d but the reopened row's)", first.Updated, rest.Updated, wantUpdated, dry.Updated)
	}

	// The sent email: row, events, map and payload item.
	want := rowTTL(sent)
	ttls := partitionTTLs(t, client, table, commPK(sent))
	for sk, got := range ttls {
		switch {
		case sk == "BODY":
			if got != bodyTTL(sent) {
				t.Errorf("sent row's payload item: ttl %d, want %d", got, bodyTTL(sent))
			}
		case got != want:
			t.Errorf("sent row %s: ttl %d, want the row's %d", sk, got, want)
		}
	}
	if _, ok := ttls["BODY"]; !ok || len(ttls) != 5 { // BODY, COMM, created, attempt_started, sent
		t.Errorf("sent row's items: %v", ttls)
	}
	if got := rawTTL(t, client, table, "PMID#"+sent.ProviderMessageID, "PMID"); got != want {
		t.Errorf("message id map: ttl %d, want the row's %d", got, want)
	}
	// The cadence root.
	step := contract.MaxFollowUpHours*time.Hour + dynamo.OpenBound
	want = epoch(root.UpdatedAt.Add(retention + 2*step))
	for sk, got := range partitionTTLs(t, client, table, commPK(root)) {
		if got != want {
			t.Errorf("cadence root %s: ttl %d, want %d", sk, got, want)
		}
	}
	// The open row: none on the row, the open bound on its event.
	for sk, got := range partitionTTLs(t, client, table, commPK(open)) {
		if w := map[bool]int64{true: 0, false: epoch(due.Add(retention + dynamo.OpenBound))}[sk == "COMM"]; got != w {
			t.Errorf("open row %s: ttl %d, want %d", sk, got, w)
		}
	}
	// The row whose TTLs were removed: the row and map get what the store
	// gave them; events the row's (the store's rule for a terminal row).
	for sk, got := range partitionTTLs(t, client, table, commPK(stamped)) {
		w := rowTTL(stamped)
		if sk == "COMM" && w != was[sk] {
			t.Errorf("stamped row: the store gave %d, the rule says %d", was[sk], w)
		}
		if got != w {
			t.Errorf("stamped row %s: ttl %d, want %d", sk, got, w)
		}
	}
	if got := rawTTL(t, client, table, "PMID#"+stamped.ProviderMessageID, "PMID"); got != pmidWas {
		t.Errorf("stamped message id map: ttl %d, want the store's %d", got, pmidWas)
	}
	// The reopened row: untouched; its events, read again, the open bound
	// (later than the TTL the row had while it was finished).
	for sk, got := range partitionTTLs(t, client, table, commPK(reopened)) {
		if sk == "COMM" && got != 0 {
			t.Errorf("reopened row: ttl %d, want none", got)
		}
		if sk != "COMM" && got <= rowTTL(reopened) {
			t.Errorf("reopened row %s: ttl %d, want the open bound, after %d", sk, got, rowTTL(reopened))
		}
	}

	// A second run finds nothing to do.
	again, err := s.Backfill(ctx, client, dynamo.BackfillOptions{Segments: 2})
	if err != nil {
		t.Fatal(err)
	}
	if again.Updated != 0 || again.ConditionalFailures != 0 || !again.Complete || again.Skipped == 0 {
		t.Errorf("second run: %+v; want nothing updated (the open and reopened rows and the company skipped)", again)
	}

	// Without a retention there is nothing to backfill.
	if _, err := old.Backfill(ctx, client, dynamo.BackfillOptions{Segments: 1}); err == nil {
		t.Error("Backfill without a retention: no error")
	}
}
