package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/emulator"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// awsBackend runs the AWS wiring in this process: the API served over HTTP,
// SQS consumed as the Lambda event source mapping would, the sweeper every
// minute and — against an emulator, which never fires schedules — due
// Scheduler schedules fired by reading them back.
type awsBackend struct {
	a      *app.AWS
	cfg    aws.Config
	log    *slog.Logger
	fire   bool
	sweep  time.Duration
	stdout io.Writer
}

func newAWSBackend(ctx context.Context, create bool, sweep time.Duration, stdout io.Writer, log *slog.Logger) (*awsBackend, error) {
	conf, err := config.LoadAWS(os.Getenv, config.Needs{Table: true, Queue: true, Scheduler: true})
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("config.LoadDefaultConfig: %w", err)
	}
	b := &awsBackend{a: app.NewAWS(conf, app.NewClients(awsCfg), log), cfg: awsCfg, log: log,
		fire: os.Getenv("AWS_ENDPOINT_URL") != "", sweep: sweep, stdout: stdout}
	if create {
		if err := b.createResources(ctx); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// createResources makes, on an emulator, what the CDK stack makes on AWS:
// the table, the queue, the schedule group and a verified sender identity.
func (b *awsBackend) createResources(ctx context.Context) error {
	c := b.a.Config
	if err := dynamo.CreateTable(ctx, b.a.Clients.DynamoDB, c.TableName); err != nil && !strings.Contains(err.Error(), "ResourceInUse") {
		return fmt.Errorf("create table: %w", err)
	}
	u, err := url.Parse(c.QueueURL)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvQueueURL, err)
	}
	if _, err := b.a.Clients.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(path.Base(u.Path))}); err != nil {
		return fmt.Errorf("create queue: %w", err)
	}
	if _, err := b.a.Clients.Scheduler.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(c.ScheduleGroup)}); err != nil {
		if _, err := b.a.Clients.Scheduler.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(c.ScheduleGroup)}); err != nil {
			return fmt.Errorf("create schedule group: %w", err)
		}
	}
	if c.DefaultFromEmail != "" {
		_, _ = b.a.Clients.SES.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(c.DefaultFromEmail)})
	}
	fmt.Fprintf(b.stdout, "resources ready: table %s, queue %s, schedule group %s\n", c.TableName, c.QueueURL, c.ScheduleGroup)
	return nil
}

// run consumes the queue, fires due schedules and sweeps until ctx ends.
func (b *awsBackend) run(ctx context.Context) error {
	dispatch := lambdafn.Dispatch(b.a.Dispatcher, b.log)
	errc := make(chan error, 3)
	go func() {
		for ctx.Err() == nil {
			_, err := emulator.PumpSQS(ctx, b.a.Clients.SQS, b.a.Config.QueueURL, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
				return lambdafn.DispatchSQS(ctx, b.a.Dispatcher, b.log, ev), nil
			}, 20*time.Second)
			if err != nil && ctx.Err() == nil {
				b.log.ErrorContext(ctx, "SQS consumer", "error", err.Error())
				time.Sleep(time.Second)
			}
		}
		errc <- nil
	}()
	go func() {
		schedules := emulator.NewSchedules(b.cfg, b.a.Config.ScheduleGroup)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for b.fire {
			select {
			case <-ctx.Done():
				errc <- nil
				return
			case <-tick.C:
				if _, err := schedules.FireDue(ctx, time.Now(), func(ctx context.Context, input []byte) error {
					_, err := dispatch(ctx, input)
					return err
				}); err != nil && ctx.Err() == nil {
					b.log.WarnContext(ctx, "firing schedules", "error", err.Error())
				}
			}
		}
		errc <- nil
	}()
	go func() {
		tick := time.NewTicker(b.sweep)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				errc <- nil
				return
			case <-tick.C:
				if _, err := b.a.Dispatcher.Sweep(ctx); err != nil && !errors.Is(err, context.Canceled) {
					b.log.ErrorContext(ctx, "sweep failed", "error", err.Error())
				}
			}
		}
	}()
	<-ctx.Done()
	for range 3 {
		<-errc
	}
	return nil
}
