// Command events is the Lambda function that records delivery feedback:
// SES events (an SQS batch from the events queue, partial batch failures
// reported) and SNS SMS delivery-status logs (a CloudWatch Logs
// subscription).
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
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context) error {
	// Only the table: recording a report neither sends nor arms a timer.
	rec, log, err := awsfn.EventsFromEnv(ctx)
	if err != nil {
		return err
	}
	lambda.Start(lambdafn.Events(rec, log))
	return nil
}
