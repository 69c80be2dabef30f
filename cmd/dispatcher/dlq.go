package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/spf13/cobra"

	"github.com/dispatcherhq/dispatcher/internal/dlq"
)

// dlqCmd is `dispatcher dlq inspect|redrive`: the on-call engineer's view
// of the stack's dead-letter queues (docs/deploy.md, "Dead-letter queues").
func dlqCmd() *cobra.Command {
	return group("dlq", "See and replay what a dead-letter queue of the AWS stack holds (AWS or the emulator)",
		dlqInspectCmd(), dlqRedriveCmd())
}

// newDLQTool builds the SQS client from the environment (credentials,
// AWS_REGION, AWS_ENDPOINT_URL for the emulator).
func newDLQTool(c *cobra.Command) (*dlq.Tool, error) {
	cfg, err := awsconfig.LoadDefaultConfig(c.Context())
	if err != nil {
		return nil, fmt.Errorf("config.LoadDefaultConfig: %w", err)
	}
	return dlq.New(sqs.NewFromConfig(cfg)), nil
}

func dlqInspectCmd() *cobra.Command {
	var queue string
	var max int
	var asJSON bool
	c := &cobra.Command{
		Use:   "inspect",
		Short: "List a dead-letter queue's messages, each with its kind, fire and error, without consuming them",
		Long: `inspect reads up to --max messages of a dead-letter queue and makes them visible
again at once (their receive counts go up; the stack's DLQs have no redrive policy of their own,
so nothing moves). Kinds: fire, schedule_undelivered (Scheduler could not invoke dispatch),
invoke_failed (dispatch failed on a fire after Lambda's retries), sweep_undelivered (Scheduler could
not invoke the sweeper: nothing to replay), ses_event, sms_reports (the events function failed on a
batch of SMS delivery-status lines), stream_batch (nothing to replay), unknown.`,
		Example: `  dispatcher dlq inspect --queue "$(out SchedulerDeadLetterQueueName)"
  dispatcher dlq inspect --queue https://sqs.eu-west-1.amazonaws.com/123456789012/dispatcher-dev-… --json`,
		Args: cobra.NoArgs,
	}
	c.Flags().StringVar(&queue, "queue", "", "dead-letter queue: name or URL (required)")
	c.Flags().IntVar(&max, "max", 20, "list at most this many messages")
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON object per message (body and attributes included)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if err := required(c, "queue"); err != nil {
			return err
		}
		if max < 1 {
			return fmt.Errorf("%s: --max %d: want at least 1", name(c), max)
		}
		tool, err := newDLQTool(c)
		if err != nil {
			return err
		}
		url, err := tool.QueueURL(c.Context(), queue)
		if err != nil {
			return err
		}
		msgs, err := tool.Inspect(c.Context(), url, max)
		if err != nil {
			return err
		}
		out := c.OutOrStdout()
		if asJSON {
			enc := json.NewEncoder(out)
			for _, m := range msgs {
				if err := enc.Encode(m); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MESSAGE ID\tSENT\tRECEIVES\tKIND\tCOMMUNICATION\tREPLAY\tERROR\tSOURCE")
		replayable := 0
		for _, m := range msgs {
			comm, replay := "-", "no"
			if m.Fire != nil {
				comm = m.Fire.CommunicationID
				if m.Fire.Kind != "" {
					comm = m.Fire.Kind + ":" + comm
				}
			}
			if m.Replayable {
				replay = "yes"
				replayable++
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.SentAt.Format(time.RFC3339), m.ReceiveCount, m.Kind, comm, replay,
				dash(m.Error), dash(m.Source))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(out, "%d message(s), %d replayable (at most --max %d listed)\n", len(msgs), replayable, max)
		return nil
	}
	return c
}

func dlqRedriveCmd() *cobra.Command {
	var from, to string
	var max int
	var kinds string
	var deleteUnreplayable bool
	c := &cobra.Command{
		Use:   "redrive",
		Short: "Replay a dead-letter queue's messages onto a queue, deleting each from the DLQ once sent",
		Long: `redrive sends each replayable message to --to and then deletes it from the DLQ: a fire as it
is (an invoke_failed record as the fire it carries), an SES event as it is. Replaying is safe: a fire
whose token is no longer its row's is dropped, and recording a delivery report is idempotent.
Messages with nothing to replay stay in the DLQ unless --delete-unreplayable.

Where to: the dispatch queue (QueueUrl) for the Scheduler DLQ and the dispatch DLQ (webhook fires
in them are handed on to the webhook queue), the webhook queue for the webhook DLQ, the events queue
for the events DLQ and the feedback target DLQ.`,
		Example: `  dispatcher dlq redrive --queue "$(out SchedulerDeadLetterQueueName)" --to "$(out QueueUrl)"
  dispatcher dlq redrive --queue "$(out SchedulerDeadLetterQueueName)" --to "$(out QueueUrl)" --kind invoke_failed --max 10
  dispatcher dlq redrive --queue "$(out EventsDeadLetterQueueName)" --to "$(out EventsQueueName)"`,
		Args: cobra.NoArgs,
	}
	c.Flags().StringVar(&from, "queue", "", "dead-letter queue to replay from: name or URL (required)")
	c.Flags().StringVar(&to, "to", "", "queue to send the messages to: name or URL (required)")
	c.Flags().IntVar(&max, "max", 0, "look at most at this many messages (0: until the DLQ is empty)")
	c.Flags().StringVar(&kinds, "kind", "", "replay only these kinds (comma-separated; see dlq inspect --help)")
	c.Flags().BoolVar(&deleteUnreplayable, "delete-unreplayable", false, "delete the messages with nothing to replay (undelivered sweeps, stream batches, unknown bodies)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if err := required(c, "queue", "to"); err != nil {
			return err
		}
		if max < 0 {
			return fmt.Errorf("%s: --max %d: want 0 (all) or more", name(c), max)
		}
		opts := dlq.RedriveOptions{Max: max, DeleteUnreplayable: deleteUnreplayable}
		for _, k := range strings.Split(kinds, ",") {
			if k = strings.TrimSpace(k); k == "" {
				continue
			}
			if !dlq.KnownKind(dlq.Kind(k)) {
				return fmt.Errorf("%s: --kind %q: want one of %s", name(c), k, strings.Join(dlq.KindNames(), ", "))
			}
			opts.Kinds = append(opts.Kinds, dlq.Kind(k))
		}
		tool, err := newDLQTool(c)
		if err != nil {
			return err
		}
		fromURL, err := tool.QueueURL(c.Context(), from)
		if err != nil {
			return err
		}
		toURL, err := tool.QueueURL(c.Context(), to)
		if err != nil {
			return err
		}
		if fromURL == toURL {
			return fmt.Errorf("%s: --queue and --to are the same queue", name(c))
		}
		res, err := tool.Redrive(c.Context(), fromURL, toURL, opts)
		fmt.Fprintf(c.OutOrStdout(), "replayed %d, deleted %d, kept %d\n", res.Replayed, res.Deleted, res.Kept)
		return err
	}
	return c
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
