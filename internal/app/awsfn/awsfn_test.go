package awsfn_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/dispatcherhq/dispatcher/internal/app/awsfn"
	"github.com/dispatcherhq/dispatcher/internal/app/core"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestLambdaConfig: the SDK config comes from Lambda's variables (region,
// the role's keys, an emulator's endpoint); an absent one is named.
func TestLambdaConfig(t *testing.T) {
	cfg, err := awsfn.LambdaConfig(env(map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIA1",
		"AWS_SECRET_ACCESS_KEY": "s3cret", "AWS_SESSION_TOKEN": "tok", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKIA1" || creds.SecretAccessKey != "s3cret" || creds.SessionToken != "tok" {
		t.Errorf("credentials = %+v, %v", creds, err)
	}
	if cfg.Region != "eu-west-1" || aws.ToString(cfg.BaseEndpoint) != "http://127.0.0.1:1" {
		t.Errorf("region %q endpoint %q", cfg.Region, aws.ToString(cfg.BaseEndpoint))
	}
	cfg, err = awsfn.LambdaConfig(env(map[string]string{"AWS_DEFAULT_REGION": "us-east-2", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}))
	if err != nil || cfg.Region != "us-east-2" || cfg.BaseEndpoint != nil {
		t.Errorf("AWS_DEFAULT_REGION: %q %v %v", cfg.Region, cfg.BaseEndpoint, err)
	}
	_, err = awsfn.LambdaConfig(env(map[string]string{"AWS_ACCESS_KEY_ID": "a"}))
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION") || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("missing variables: %v", err)
	}
}

// TestNewCoreWiresWithoutCallingAWS: the dispatch and sweeper functions'
// core is built from clients alone (nothing is called); a webhook fire
// that reaches a function configured without the webhook queue fails
// naming the variable, and core.Build names every missing port.
func TestNewCoreWiresWithoutCallingAWS(t *testing.T) {
	c, err := awsfn.NewCore(config.AWS{TableName: "t", QueueURL: "http://127.0.0.1:1/q", ScheduleGroup: "g"},
		awsfn.NewClients(aws.Config{Region: "us-east-1"}), slog.New(slog.DiscardHandler), awsfn.Options{})
	if err != nil || c.Dispatcher == nil || c.Webhooks == nil {
		t.Fatalf("NewCore: %+v, %v", c, err)
	}
	err = c.Handle(context.Background(), comms.Fire{Kind: webhooks.FireKind, CompanyID: "c", CommunicationID: "e", Token: "d"})
	if err == nil || !strings.Contains(err.Error(), config.EnvWebhookQueueURL) {
		t.Errorf("webhook fire without a webhook queue: %v", err)
	}
	_, err = awsfn.NewCore(config.AWS{TableName: "t"}, awsfn.Clients{DynamoDB: dynamodb.NewFromConfig(aws.Config{Region: "us-east-1"})},
		nil, awsfn.Options{})
	for _, port := range []string{"Email", "SMS"} {
		if err == nil || !strings.Contains(err.Error(), "Ports."+port+" is required") {
			t.Errorf("NewCore without clients does not name Ports.%s: %v", port, err)
		}
	}
	_, err = awsfn.NewCore(config.AWS{TableName: "t"}, awsfn.Clients{DynamoDB: dynamodb.NewFromConfig(aws.Config{Region: "us-east-1"}),
		SES: sesv2.NewFromConfig(aws.Config{Region: "us-east-1"}), SNS: sns.NewFromConfig(aws.Config{Region: "us-east-1"})}, nil, awsfn.Options{})
	if err == nil || !strings.Contains(err.Error(), "Ports.Timer returned no timer") {
		t.Errorf("NewCore without SQS: %v", err)
	}
	if err := (core.Ports{}).Missing(); err == nil || !strings.Contains(err.Error(), "Ports.Render is required") {
		t.Errorf("Missing() = %v", err)
	}
}
