// Command api is the Lambda function behind API Gateway (HTTP API, payload
// format 2.0): the whole HTTP API of internal/httpapi through
// aws-lambda-go-api-proxy.
package main

import (
	"context"
	"fmt"
	"os"
	_ "time/tzdata" // the Lambda runtime image has no zoneinfo

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/config"
)

func main() {
	if err := realMain(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context) error {
	a, _, err := app.NewAWSFromEnv(ctx, config.Needs{Table: true, Queue: true, Scheduler: true, WebhookQueue: true})
	if err != nil {
		return err
	}
	lambda.Start(httpadapter.NewV2(app.GatewayRequestIDs(a.API)).ProxyWithContext)
	return nil
}
