package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// TestRetentionBackfill runs `retention backfill` as an operator would,
// against the emulator, on rows written by a store without retention: the
// dry run counts and writes nothing, the run gives a cancelled row
// cancelled_at + DISPATCHER_RETENTION_DAYS and leaves the open one
// without, a second run updates nothing; bad flags are one-line errors.
func TestRetentionBackfill(t *testing.T) {
	cfg := awstest.Config(t)
	t.Setenv("AWS_REGION", cfg.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	table := awstest.Unique(t, "dispatcher")
	ctx := t.Context()
	if err := dynamo.CreateTable(ctx, client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}) })
	t.Setenv(config.EnvTableName, table)
	t.Setenv(config.EnvRetentionDays, "30")

	old := dynamo.New(client, table)
	now := time.Now().UTC().Truncate(time.Second)
	co := "co_" + uuid.NewString()
	if err := old.CreateCompany(ctx, comms.Company{ID: co, Credits: 10, Settings: comms.DefaultSettings(), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	newRow := func() comms.Communication {
		r := comms.Create(comms.Communication{ID: uuid.NewString(), CompanyID: co, Channel: comms.ChannelEmail,
			ScheduledFor: now.Add(time.Hour), NextAttemptAt: now.Add(time.Hour), Timezone: "UTC", MaxAttempts: 3, Source: comms.SourceAPI,
			Payload: json.RawMessage(`{"to_email":"ada@example.com","subject":"Hi","html_body":"<p>Hi</p>"}`)}, now)
		if _, err := old.CreateCommunication(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
		row, err := old.GetCommunication(ctx, co, r.Row.ID)
		if err != nil {
			t.Fatal(err)
		}
		return row
	}
	cancelAt := now.Add(time.Minute)
	done := newRow()
	ch, err := comms.Cancel(done, comms.CancelReason("api"), cancelAt)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := old.UpdateCommunication(ctx, ch, false); err != nil {
		t.Fatal(err)
	}
	open := newRow()
	ttl := func(r comms.Communication) int64 {
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "COMM#" + co + "#" + r.ID}, "sk": &types.AttributeValueMemberS{Value: "COMM"}}})
		if err != nil || out.Item == nil {
			t.Fatalf("GetItem: %v, %v", out, err)
		}
		n, ok := out.Item["ttl"].(*types.AttributeValueMemberN)
		if !ok {
			return 0
		}
		v, _ := strconv.ParseInt(n.Value, 10, 64)
		return v
	}
	backfill := func(args ...string) backfillLine {
		t.Helper()
		out, _, err := run(append([]string{"retention", "backfill", "--backend", "aws"}, args...)...)
		if err != nil {
			t.Fatalf("backfill %v: %v\n%s", args, err, out)
		}
		if strings.Count(out, "\n") != 1 {
			t.Fatalf("backfill %v: want one line:\n%s", args, out)
		}
		var l backfillLine
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatal(err)
		}
		if l.Table != table || l.RetentionDays != 30 || !l.Complete {
			t.Errorf("backfill %v: %s", args, out)
		}
		return l
	}

	// The cancelled row and its two events; the open row's created event.
	if l := backfill("--dry-run", "--segments", "2"); !l.DryRun || l.Updated != 4 || l.UpdatedByKind["row"] != 1 || ttl(done) != 0 {
		t.Errorf("dry run: %+v, row ttl %d; want 4 counted, nothing written", l, ttl(done))
	}
	if l := backfill("--max-wcu", "50"); l.Updated != 4 || l.Skipped < 2 || l.ConditionalFailures != 0 {
		t.Errorf("run: %+v; want 4 updated, the open row and the company skipped", l)
	}
	if got, want := ttl(done), cancelAt.Add(30*24*time.Hour).Unix(); got != want {
		t.Errorf("cancelled row: ttl %d, want %d (cancelled + 30 days)", got, want)
	}
	if got := ttl(open); got != 0 {
		t.Errorf("open row: ttl %d, want none", got)
	}
	if l := backfill("--start", `{"segments":[{},{}]}`); l.Updated != 0 || l.Segments != 2 {
		t.Errorf("second run: %+v; want nothing updated over the 2 segments of --start", l)
	}

	_, _, err = run("retention", "backfill")
	oneLine(t, "backfill on the embedded backend", err, "--backend must be aws")
	_, _, err = run("retention", "backfill", "--backend", "aws", "--segments", "0")
	oneLine(t, "backfill --segments 0", err, "--segments 0")
	_, _, err = run("retention", "backfill", "--backend", "aws", "--start", "segment 3")
	oneLine(t, "backfill --start garbage", err, "--start")
	_, _, err = run("retention", "backfill", "--backend", "aws", "--segments", "3", "--start", `{"segments":[{}]}`)
	oneLine(t, "backfill --segments against --start", err, "--start has 1 segments")
}
