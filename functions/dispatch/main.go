// Command dispatch is the Lambda function that delivers fires: invoked by
// EventBridge Scheduler with one fire, and by SQS with batches of fires
// (partial batch failures reported).
package main

import (
	"context"
	"fmt"
	"os"
	_ "time/tzdata" // the Lambda runtime image has no zoneinfo

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
)

func main() {
	if err := realMain(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "dispatch:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context) error {
	a, log, err := app.NewAWSFromEnv(ctx, config.Needs{Table: true, Queue: true, Scheduler: true, WebhookQueue: true})
	if err != nil {
		return err
	}
	lambda.Start(lambdafn.Dispatch(a, log)) // rows to the dispatcher, webhook fires to their queue (app.AWS.Handle)
	return nil
}
