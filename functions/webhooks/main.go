// Command webhooks is the Lambda function that delivers status webhooks:
// invoked by the table's DynamoDB stream with the inserts of event items
// (it arms each company's fan-out), and by the webhook queue with batches
// of webhook fires (a company's fan-out, a delivery's attempt). Partial
// batch failures are reported for both.
package main

import (
	"context"
	"fmt"
	"os"
	_ "time/tzdata" // the Lambda runtime image has no zoneinfo

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/dispatcherhq/dispatcher/internal/app/awsfn"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
)

func main() {
	if err := realMain(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "webhooks:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context) error {
	// The scheduler settings: a retry hours away is a schedule.
	engine, timer, log, err := awsfn.WebhooksFromEnv(ctx)
	if err != nil {
		return err
	}
	lambda.Start(lambdafn.Webhooks(engine, lambdafn.WebhookOptions{Timer: timer}, log))
	return nil
}
