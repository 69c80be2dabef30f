// Command sweeper is the Lambda function run every minute: it fires pending
// rows whose fire was lost and settles rows whose lease expired.
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
		fmt.Fprintln(os.Stderr, "sweeper:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context) error {
	c, log, err := awsfn.DispatchFromEnv(ctx)
	if err != nil {
		return err
	}
	lambda.Start(lambdafn.Sweep(c, log)) // the dispatcher's sweep and lost webhook fires (awsfn.Core.Sweep)
	return nil
}
