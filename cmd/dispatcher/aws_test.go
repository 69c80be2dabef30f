package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/config"
)

// lockedBuffer is a bytes.Buffer that serve's goroutines may write while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeAWSLogsTheRequestID: `serve --backend aws` (what make dev-aws
// runs) logs as the functions do, so the send of a row carries the request
// id of the API call that created it (docs/design.md §14.8) — the way an
// on-call engineer follows one communication, tried on the emulator.
func TestServeAWSLogsTheRequestID(t *testing.T) {
	cfg := awstest.Config(t)
	endpoint := strings.TrimSuffix(awstest.Endpoint(t), "/")
	table, queue, webhooks := awstest.Unique(t, "t"), awstest.Unique(t, "q"), awstest.Unique(t, "wq")
	group, dlq := awstest.Unique(t, "g"), awstest.Unique(t, "dlq")
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": cfg.Region, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		config.EnvTableName: table, config.EnvQueueURL: endpoint + "/123456789012/" + queue,
		config.EnvWebhookQueueURL: endpoint + "/123456789012/" + webhooks, config.EnvScheduleGroup: group,
		config.EnvSchedulerRoleARN:  "arn:aws:iam::123456789012:role/trace-scheduler",
		config.EnvDispatchTargetARN: "arn:aws:lambda:us-east-1:123456789012:function:trace-dispatch",
		config.EnvSchedulerDLQARN:   "arn:aws:sqs:us-east-1:123456789012:" + dlq,
		config.EnvDefaultFromEmail:  "team@trace.example.com",
	} {
		t.Setenv(k, v)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = dynamodb.NewFromConfig(cfg).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		for _, q := range []string{queue, webhooks, dlq} {
			_, _ = sqs.NewFromConfig(cfg).DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(endpoint + "/123456789012/" + q)})
		}
		_, _ = scheduler.NewFromConfig(cfg).DeleteScheduleGroup(ctx, &scheduler.DeleteScheduleGroupInput{Name: aws.String(group)})
	})

	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- realMain(ctx, []string{"serve", "--backend", "aws", "--create-resources", "--addr", "127.0.0.1:0", "--data", data}, pw, stderr)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	var addr string
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			addr = a
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if addr == "" {
		t.Fatalf("serve never printed 'listening on'; stderr:\n%s", stderr.String())
	}
	key, err := os.ReadFile(filepath.Join(data, app.DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}

	const requestID = "trace-create-1"
	body := `{"channel":"email","scheduled_for":"` + time.Now().UTC().Format(time.RFC3339) +
		`","payload":{"to_email":"sarah@example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`
	req, _ := http.NewRequest(http.MethodPost, addr+"/v1/scheduled-communications", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", requestID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d, %v", resp.StatusCode, err)
	}

	// The send's line: wait for it (the queue is polled), then read it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var l struct {
				Msg             string `json:"msg"`
				CommunicationID string `json:"communication_id"`
				RequestID       string `json:"request_id"`
			}
			if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "delivery attempt" || l.CommunicationID != created.Data.ID {
				continue
			}
			if l.RequestID != requestID {
				t.Fatalf("the send's line has request_id %q, want the create's %q:\n%s", l.RequestID, requestID, line)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery attempt line for %s within 30 s; stderr:\n%s", created.Data.ID, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
