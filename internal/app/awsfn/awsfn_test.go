package awsfn_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/dispatcherhq/dispatcher/internal/app/awsfn"
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
