package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/dlq"
)

// TestDLQCommands runs `dlq inspect` and `dlq redrive` as an operator
// would, against the emulator (credentials and endpoint from the
// environment, queues by URL or by name).
func TestDLQCommands(t *testing.T) {
	cfg := awstest.Config(t)
	t.Setenv("AWS_REGION", cfg.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	client := sqs.NewFromConfig(cfg)
	dlqURL, _ := awstest.CreateQueue(t, cfg)
	destURL, _ := awstest.CreateQueue(t, cfg)
	fire := `{"company_id":"acme","communication_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","token":"5a3c9e1f0b7d2a4c6e8f0a1b"}`
	for _, body := range []string{fire, `{}`} {
		if _, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(dlqURL), MessageBody: aws.String(body),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				"ERROR_CODE": {DataType: aws.String("String"), StringValue: aws.String("AWS.Lambda.TooManyRequestsException")},
			}}); err != nil {
			t.Fatal(err)
		}
	}

	out, _, err := run("dlq", "inspect", "--queue", dlqURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"schedule_undelivered", "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "sweep_undelivered",
		"TooManyRequestsException", "2 message(s), 1 replayable"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	if out, _, err := run("dlq", "inspect", "--queue", dlqURL, "--json", "--max", "1"); err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"kind":`) {
		t.Errorf("inspect --json --max 1: %v\n%s", err, out)
	}

	destName := destURL[strings.LastIndexByte(destURL, '/')+1:]
	out, _, err = run("dlq", "redrive", "--queue", dlqURL, "--to", destName)
	if err != nil || !strings.Contains(out, "replayed 1, deleted 0, kept 1") {
		t.Fatalf("redrive: %v\n%s", err, out)
	}
	got, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(destURL), WaitTimeSeconds: 1})
	if err != nil || len(got.Messages) != 1 || aws.ToString(got.Messages[0].Body) != fire {
		t.Errorf("destination: %+v, %v; want the fire", got, err)
	}
	out, _, err = run("dlq", "redrive", "--queue", dlqURL, "--to", destURL, "--delete-unreplayable")
	if err != nil || !strings.Contains(out, "replayed 0, deleted 1, kept 0") {
		t.Errorf("redrive --delete-unreplayable: %v\n%s", err, out)
	}

	_, _, err = run("dlq", "redrive", "--queue", dlqURL)
	oneLine(t, "redrive without --to", err, "--to")
	_, _, err = run("dlq", "redrive", "--queue", dlqURL, "--to", destURL, "--kind", "fires")
	oneLine(t, "redrive --kind fires", err, `--kind "fires": want one of fire,`)
	_, _, err = run("dlq", "redrive", "--queue", dlqURL, "--to", dlqURL)
	oneLine(t, "redrive onto itself", err, "the same queue")
}

// TestDLQHelpNamesEveryKind: `dlq inspect --help` names every kind inspect
// can print and `redrive --kind` takes, so none is a surprise on call.
func TestDLQHelpNamesEveryKind(t *testing.T) {
	out, _, err := run("dlq", "inspect", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range dlq.KindNames() {
		if !strings.Contains(out, k) {
			t.Errorf("dlq inspect --help does not name the kind %q:\n%s", k, out)
		}
	}
}
