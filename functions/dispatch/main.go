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
	"github.com/dispatcherhq/dispatcher/internal/app/awsfn"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
)

func main() {
	if err := realMain(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "dispatch:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context) error {
	// Only what delivering links: not the API, not libphonenumber (awsfn).
	c, log, err := awsfn.DispatchFromEnv(ctx)
	if err != nil {
		return err
	}
	lambda.Start(lambdafn.Dispatch(c, log)) // rows to the dispatcher, webhook fires to their queue (awsfn.Core.Handle)
	return nil
}
