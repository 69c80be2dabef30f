package awslocal_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/awslocal"
	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/emulator"
)

// setup returns the configuration of resources unique to the test (none
// created yet) and the product's clients on the emulator.
func setup(t *testing.T) (config.AWS, aws.Config, app.Clients) {
	t.Helper()
	cfg := awstest.Config(t)
	clients := app.NewClients(cfg)
	queue := awstest.Unique(t, "q")
	conf := config.AWS{
		TableName:         awstest.Unique(t, "t"),
		QueueURL:          strings.TrimSuffix(awstest.Endpoint(t), "/") + "/123456789012/" + queue,
		ScheduleGroup:     awstest.Unique(t, "g"),
		SchedulerRoleARN:  "arn:aws:iam::123456789012:role/awslocal-scheduler",
		DispatchTargetARN: "arn:aws:lambda:us-east-1:123456789012:function:awslocal-dispatch",
		SchedulerDLQARN:   "arn:aws:sqs:us-east-1:123456789012:" + awstest.Unique(t, "dlq"),
		DefaultFromEmail:  strings.ToLower(awstest.Unique(t, "from")) + "@awslocal.example.com",
		SchedulerLead:     2 * time.Minute,
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = clients.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(conf.TableName)})
		_, _ = clients.SQS.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(conf.QueueURL)})
		if dlq, err := clients.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(conf.SchedulerDLQARN[strings.LastIndex(conf.SchedulerDLQARN, ":")+1:])}); err == nil {
			_, _ = clients.SQS.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: dlq.QueueUrl})
		}
		_, _ = clients.Scheduler.DeleteScheduleGroup(ctx, &scheduler.DeleteScheduleGroupInput{Name: aws.String(conf.ScheduleGroup)})
	})
	return conf, cfg, clients
}

// TestCreateResourcesIsIdempotent: the first call creates every resource,
// the second finds them and succeeds (what `serve --backend aws
// --create-resources` does at every start).
func TestCreateResourcesIsIdempotent(t *testing.T) {
	t.Parallel()
	conf, _, clients := setup(t)
	ctx := context.Background()
	for i := range 2 {
		if err := awslocal.CreateResources(ctx, awslocal.ClientsOf(clients), conf); err != nil {
			t.Fatalf("CreateResources #%d: %v", i+1, err)
		}
	}
	if _, err := clients.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(conf.TableName)}); err != nil {
		t.Errorf("table: %v", err)
	}
	q, err := clients.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(conf.QueueURL[strings.LastIndex(conf.QueueURL, "/")+1:])})
	if err != nil || aws.ToString(q.QueueUrl) == "" {
		t.Errorf("queue: %v, %v", q, err)
	}
	// The Scheduler DLQ too, so `dispatcher dlq inspect` finds it on the emulator.
	dlq, err := clients.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(conf.SchedulerDLQARN[strings.LastIndex(conf.SchedulerDLQARN, ":")+1:])})
	if err != nil || aws.ToString(dlq.QueueUrl) == "" {
		t.Errorf("scheduler DLQ: %v, %v", dlq, err)
	}
	if _, err := clients.Scheduler.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(conf.ScheduleGroup)}); err != nil {
		t.Errorf("schedule group: %v", err)
	}
	if _, err := clients.SES.GetEmailIdentity(ctx, &sesv2.GetEmailIdentityInput{EmailIdentity: aws.String(conf.DefaultFromEmail)}); err != nil {
		t.Errorf("sender identity: %v", err)
	}
}

// TestRunDeliversAndStops: an email created through the API, due now, is
// consumed from the queue by the Runner and sent; the Runner returns once
// its context ends.
func TestRunDeliversAndStops(t *testing.T) {
	t.Parallel()
	conf, cfg, _ := setup(t)
	ctx := context.Background()
	// The product's clients tell the test when the Runner has handled a
	// batch (its delete went through): the test waits for that, not for
	// a time.
	handled := make(chan struct{}, 100)
	productCfg := cfg.Copy()
	productCfg.APIOptions = append(productCfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("test.batchHandled",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if err == nil && awsmiddleware.GetOperationName(ctx) == "DeleteMessageBatch" {
					select {
					case handled <- struct{}{}:
					default:
					}
				}
				return out, md, err
			}), middleware.After)
	})
	clients := app.NewClients(productCfg)
	if err := awslocal.CreateResources(ctx, awslocal.ClientsOf(clients), conf); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	a := app.NewAWS(conf, clients, log)
	key, _, err := app.EnsureDevCompany(ctx, a.Store, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- awslocal.New(a, log, awslocal.Options{
			Schedules: emulator.NewSchedules(cfg, conf.ScheduleGroup),
			PollWait:  time.Second,
		}).Run(runCtx)
	}()
	api := httptest.NewServer(a.API)
	defer api.Close()
	call := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, api.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			Data map[string]any `json:"data"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d, %v", method, path, res.StatusCode, err)
		}
		return out.Data
	}
	to := strings.ToLower(awstest.Unique(t, "to")) + "@awslocal.example.com"
	row := call("POST", "/v1/scheduled-communications", `{"channel":"email","scheduled_for":"`+time.Now().UTC().Format(time.RFC3339)+
		`","payload":{"to_email":"`+to+`","subject":"Hi","html_body":"<p>Hi</p>"}}`)
	id, _ := row["id"].(string)
	select {
	case <-handled:
	case <-time.After(time.Minute): // only so a broken Runner fails instead of hanging
		t.Fatal("the Runner never handled a batch")
	}
	if status := call("GET", "/v1/scheduled-communications/"+id, "")["status"]; status != "sent" {
		t.Errorf("after the batch the email is %v, want sent", status)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after its context ended", err)
	}
}

// TestRunDeliversWebhooks: with a webhook queue and the table's stream,
// the Runner does what the webhooks function's two event sources do: a
// company's receiver gets the created event of a row, once the feed has
// settled (about dynamo.FeedSettle after the write), with nothing else
// written meanwhile to push it along.
func TestRunDeliversWebhooks(t *testing.T) {
	t.Parallel()
	conf, cfg, clients := setup(t)
	conf.WebhookQueueURL = conf.QueueURL + "-webhooks"
	ctx := context.Background()
	t.Cleanup(func() {
		_, _ = clients.SQS.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(conf.WebhookQueueURL)})
	})
	if err := awslocal.CreateResources(ctx, awslocal.ClientsOf(clients), conf); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	a := app.NewAWS(conf, clients, log, app.WithWebhookLoopback())
	key, _, err := app.EnsureDevCompany(ctx, a.Store, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := emulator.NewStream(ctx, cfg, conf.TableName)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct{ Type string }
		_ = json.NewDecoder(r.Body).Decode(&msg)
		got <- msg.Type
	}))
	defer rc.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- awslocal.New(a, log, awslocal.Options{Stream: stream, StreamEvery: 200 * time.Millisecond, PollWait: time.Second}).Run(runCtx)
	}()
	defer func() { stop(); <-done }()
	api := httptest.NewServer(a.API)
	defer api.Close()
	post := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", api.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 201 {
			t.Fatalf("POST %s: %v %v", path, res, err)
		}
		res.Body.Close()
	}
	post("/v1/webhook-endpoints", `{"url":"`+rc.URL+`","event_types":["created"]}`)
	post("/v1/scheduled-communications", `{"channel":"email","scheduled_for":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+
		`","payload":{"to_email":"sarah@awslocal.example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`)
	select {
	case typ := <-got:
		if typ != "created" {
			t.Errorf("the receiver got %q, want created", typ)
		}
	case <-time.After(90 * time.Second): // a bound for a broken build: the feed settles in ~16 s
		t.Fatal("no webhook within 90 s")
	}
}

// TestSchedulerDLQName: the queue CreateResources makes for
// DISPATCHER_SCHEDULER_DLQ_ARN is the ARN's last field; anything but an SQS
// queue ARN is refused, naming the variable.
func TestSchedulerDLQName(t *testing.T) {
	got, err := awslocal.SchedulerDLQName(config.AWS{SchedulerDLQARN: "arn:aws:sqs:us-east-1:123456789012:dev-dispatch-dlq"})
	if err != nil || got != "dev-dispatch-dlq" {
		t.Errorf("SchedulerDLQName = %q, %v; want dev-dispatch-dlq", got, err)
	}
	for _, bad := range []string{"dev-dispatch-dlq", "arn:aws:sns:us-east-1:123456789012:topic", "arn:aws:sqs:us-east-1:123456789012:", "arn:aws:sqs:us-east-1:123456789012:a:b"} {
		if _, err := awslocal.SchedulerDLQName(config.AWS{SchedulerDLQARN: bad}); err == nil || !strings.Contains(err.Error(), config.EnvSchedulerDLQARN) {
			t.Errorf("SchedulerDLQName(%q) = %v; want an error naming %s", bad, err, config.EnvSchedulerDLQARN)
		}
	}
}
