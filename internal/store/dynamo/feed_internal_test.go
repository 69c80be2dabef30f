package dynamo

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// queryCounter counts Query calls.
type queryCounter struct {
	API
	n atomic.Int64
}

func (q *queryCounter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	q.n.Add(1)
	return q.API.Query(ctx, in, o...)
}

// TestFeedWithARareTypeReadsABoundedAmount: a type filter that matches
// almost nothing does not make one request read the company's whole feed;
// it returns has_more and a cursor past what it examined, and following the
// cursors still finds every match once.
func TestFeedWithARareTypeReadsABoundedAmount(t *testing.T) {
	pages, size := maxFilteredPages, feedFilteredPage
	maxFilteredPages, feedFilteredPage = 1, 2
	t.Cleanup(func() { maxFilteredPages, feedFilteredPage = pages, size })

	client := dynamodb.NewFromConfig(awstest.Config(t), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	table := awstest.Unique(t, "feedscan")
	if err := CreateTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	q := &queryCounter{API: client}
	s := New(q, table)
	ctx := t.Context()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if err := s.CreateCompany(ctx, comms.Company{ID: "co_scan", Credits: 100, Settings: comms.DefaultSettings(), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	var cancelled []string
	for i := range 24 {
		row := comms.Communication{ID: comms.EventID("row", int64(i)), CompanyID: "co_scan", Channel: comms.ChannelEmail,
			ScheduledFor: now, NextAttemptAt: now, MaxAttempts: 3, Source: comms.SourceAPI}
		ch := comms.Create(row, now.Add(time.Duration(i)*time.Second))
		if _, err := s.CreateCommunication(ctx, ch, nil); err != nil {
			t.Fatal(err)
		}
		if i%8 == 3 {
			stored := ch.Row
			stored.Version = 1
			cancel, err := comms.Cancel(stored, comms.CancelAPI, now.Add(time.Duration(i)*time.Second+time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.UpdateCommunication(ctx, cancel, false); err != nil {
				t.Fatal(err)
			}
			cancelled = append(cancelled, row.ID)
		}
	}
	f := comms.EventFilter{Types: []comms.EventType{comms.EventCancelled}, Limit: 10, Now: now.Add(time.Hour)}
	var got []string
	for page := 0; ; page++ {
		q.n.Store(0)
		evs, next, more, err := s.ListCompanyEvents(ctx, "co_scan", f)
		if err != nil {
			t.Fatal(err)
		}
		if n := q.n.Load(); n > FeedShards*int64(maxFilteredPages) {
			t.Fatalf("page %d made %d Query calls, more than %d", page, n, FeedShards*maxFilteredPages)
		}
		for _, e := range evs {
			got = append(got, e.CommunicationID)
		}
		if !more {
			break
		}
		if next == f.After || page > 100 {
			t.Fatalf("page %d: the cursor does not move (%q)", page, next)
		}
		f.After = next
	}
	if len(got) != len(cancelled) {
		t.Fatalf("found %d cancelled events, want %d: %v", len(got), len(cancelled), got)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("event of %s twice", id)
		}
		seen[id] = true
	}
}
