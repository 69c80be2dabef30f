package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"

	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// retentionCmd is `dispatcher retention backfill`: the operator's command
// that gives rows finished before retention existed their TTL
// (docs/deploy.md, "Retention backfill"; design §14.5).
func retentionCmd() *cobra.Command {
	return group("retention", "Administer the retention of finished rows (AWS backend)", retentionBackfillCmd())
}

// backfillLine is the one JSON line backfill prints: the table, the
// retention it applied, and dynamo.BackfillReport's counts.
type backfillLine struct {
	Table         string  `json:"table"`
	RetentionDays float64 `json:"retention_days"`
	Segments      int     `json:"segments"`
	dynamo.BackfillReport
	Error string `json:"error,omitempty"`
}

func retentionBackfillCmd() *cobra.Command {
	var backend, start string
	var segments int
	var pageSize int32
	var maxWCU, maxRCU float64
	var dryRun bool
	var progress time.Duration
	c := &cobra.Command{
		Use:   "backfill",
		Short: "Give the items stored before retention existed the TTL the store gives them now",
		Long: `backfill scans the table named by ` + config.EnvTableName + ` (parallel Scan segments) and
gives every item that should carry the retention TTL and does not the TTL the store's own rules
give it, with the retention of ` + config.EnvRetentionDays + ` (default ` + fmt.Sprint(config.DefaultRetentionDays) + ` days; use the stack's
RetentionDays): a finished row updated_at + retention (a voice cadence's root longer), its events
and provider message id map the same, its payload item the store's bucketed payload TTL; the events
of an open row the open bound (their time, scheduled_for, next_attempt_at + retention + 30 days).
Open rows get none. Each write is an UpdateItem on condition that the item still has no TTL (a row:
and is still at the version and status read), so running it again, or while the stack runs, is safe.

Reads and writes are capped by --max-rcu and --max-wcu: capacity units a second as DynamoDB reports
them (a write of a large payload item costs one unit per KB). It prints one JSON line: scanned,
updated (by kind), skipped, conditional_failures, consumed units, complete, and, when it stopped
before the end (an error, Ctrl-C), next: pass it to --start to resume. Progress lines, each with
its next, go to stderr every --progress.`,
		Example: `  DISPATCHER_TABLE_NAME=dispatcher-prod DISPATCHER_RETENTION_DAYS=90 dispatcher retention backfill --backend aws --dry-run
  dispatcher retention backfill --backend aws --segments 8 --max-wcu 200 --max-rcu 400
  dispatcher retention backfill --backend aws --start '{"segments":[{"done":true},{"pk":"COMM#co_…","sk":"EVT#0000000003"}]}'`,
		Args: cobra.NoArgs,
	}
	fl := c.Flags()
	fl.StringVar(&backend, "backend", "embedded", "aws (the DynamoDB table named by "+config.EnvTableName+"); the embedded store has no retention")
	fl.IntVar(&segments, "segments", 4, fmt.Sprintf("parallel Scan segments (1 to %d)", dynamo.MaxBackfillSegments))
	fl.Float64Var(&maxWCU, "max-wcu", 100, "write capacity units a second the backfill may consume (0: no cap)")
	fl.Float64Var(&maxRCU, "max-rcu", 200, "read capacity units a second the backfill may consume (0: no cap)")
	fl.Int32Var(&pageSize, "page-size", 0, "items each Scan call examines (0: DynamoDB's 1 MB pages)")
	fl.BoolVar(&dryRun, "dry-run", false, "count what would be updated, write nothing")
	fl.StringVar(&start, "start", "", "resume from the next of an earlier report (JSON; its segments decide --segments)")
	fl.DurationVar(&progress, "progress", 30*time.Second, "how often to print a progress line on stderr (0: never)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if backend != "aws" {
			return fmt.Errorf("%s: --backend must be aws, not %q: the embedded store keeps every row (it has no retention)", name(c), backend)
		}
		opts := dynamo.BackfillOptions{Segments: segments, DryRun: dryRun, PageSize: pageSize, MaxWCU: maxWCU, MaxRCU: maxRCU}
		switch {
		case segments < 1 || segments > dynamo.MaxBackfillSegments:
			return fmt.Errorf("%s: --segments %d: want 1 to %d", name(c), segments, dynamo.MaxBackfillSegments)
		case maxWCU < 0 || maxRCU < 0:
			return fmt.Errorf("%s: --max-wcu and --max-rcu must be 0 (no cap) or more", name(c))
		case pageSize < 0:
			return fmt.Errorf("%s: --page-size %d: want 0 or more", name(c), pageSize)
		}
		if start != "" {
			var pos dynamo.BackfillPosition
			if err := json.Unmarshal([]byte(start), &pos); err != nil || len(pos.Segments) == 0 {
				return fmt.Errorf("%s: --start: want the next of a report, {\"segments\":[…]}, not %q", name(c), start)
			}
			if c.Flags().Changed("segments") && segments != len(pos.Segments) {
				return fmt.Errorf("%s: --segments %d, but --start has %d segments", name(c), segments, len(pos.Segments))
			}
			opts.Start, segments = &pos, len(pos.Segments)
		}
		conf, err := config.LoadAWS(os.Getenv, config.Needs{Table: true})
		if err != nil {
			return err
		}
		awsCfg, err := awsconfig.LoadDefaultConfig(c.Context())
		if err != nil {
			return fmt.Errorf("config.LoadDefaultConfig: %w", err)
		}
		client := dynamodb.NewFromConfig(awsCfg)
		line := backfillLine{Table: conf.TableName, RetentionDays: conf.Retention.Hours() / 24, Segments: segments}
		if progress > 0 {
			var mu sync.Mutex
			last := time.Now()
			enc := json.NewEncoder(c.ErrOrStderr())
			opts.Progress = func(r dynamo.BackfillReport) {
				mu.Lock()
				defer mu.Unlock()
				if time.Since(last) < progress {
					return
				}
				last = time.Now()
				l := line
				l.BackfillReport = r
				_ = enc.Encode(l)
			}
		}
		rep, err := dynamo.New(client, conf.TableName).WithRetention(conf.Retention).Backfill(c.Context(), client, opts)
		line.BackfillReport = rep
		if err != nil {
			line.Error = err.Error()
		}
		if encErr := json.NewEncoder(c.OutOrStdout()).Encode(line); encErr != nil && err == nil {
			err = encErr
		}
		return err
	}
	return c
}
