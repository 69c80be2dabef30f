package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/awslocal"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/emulator"
)

// serveAWS wires `serve --backend aws`: the configuration and the clients,
// the resources when asked, the product over them, and the local runner of
// what Lambda and EventBridge do (internal/awslocal). It logs to stderr as
// the functions do (app.NewLogger: DISPATCHER_LOG_LEVEL, the EMF metrics,
// and the request id of the API call that armed a fire on the lines of its
// send, docs/design.md §14.8).
func serveAWS(ctx context.Context, ln net.Listener, data string, create bool, sweep time.Duration, stdout, stderr io.Writer) error {
	conf, err := config.LoadAWS(os.Getenv, config.Needs{Table: true, Queue: true, Scheduler: true})
	if err != nil {
		return err
	}
	log := app.NewLogger(stderr, conf.LogLevel, conf.MetricsNamespace)
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("config.LoadDefaultConfig: %w", err)
	}
	clients := app.NewClients(awsCfg)
	if create {
		if err := awslocal.CreateResources(ctx, awslocal.ClientsOf(clients), conf); err != nil {
			return err
		}
		dlqName, _ := awslocal.SchedulerDLQName(conf) // CreateResources checked it
		fmt.Fprintf(stdout, "resources ready: table %s, queue %s, schedule group %s, Scheduler DLQ %s (dispatcher dlq inspect --queue %s)\n",
			conf.TableName, conf.QueueURL, conf.ScheduleGroup, dlqName, dlqName)
	}
	var aopts []app.AWSOption
	emulated := os.Getenv("AWS_ENDPOINT_URL") != ""
	if emulated {
		// Against an emulator, webhook receivers are local servers.
		aopts = append(aopts, app.WithWebhookLoopback())
	}
	a := app.NewAWS(conf, clients, log, aopts...)
	opts := awslocal.Options{SweepEvery: sweep}
	if emulated {
		// An emulator never fires schedules nor invokes functions from
		// the table's stream: the runner does.
		opts.Schedules = emulator.NewSchedules(awsCfg, conf.ScheduleGroup)
		if conf.WebhookQueueURL != "" {
			st, err := emulator.NewStream(ctx, awsCfg, conf.TableName)
			if err != nil {
				log.WarnContext(ctx, "status webhooks are off: the table has no stream (delete it to have it made again)", "error", err.Error())
			} else {
				opts.Stream = st
			}
		}
	}
	if err := devBanner(ctx, a.Store, data, stdout); err != nil {
		return err
	}
	return listenAndRun(ctx, ln, a.API, awslocal.New(a, log, opts).Run, stdout)
}
