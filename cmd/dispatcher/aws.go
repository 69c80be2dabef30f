package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/awslocal"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/emulator"
)

// serveAWS wires `serve --backend aws`: the configuration and the clients,
// the resources when asked, the product over them, and the local runner of
// what Lambda and EventBridge do (internal/awslocal).
func serveAWS(ctx context.Context, addr, data string, create bool, sweep time.Duration, stdout io.Writer, log *slog.Logger) error {
	conf, err := config.LoadAWS(os.Getenv, config.Needs{Table: true, Queue: true, Scheduler: true})
	if err != nil {
		return err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("config.LoadDefaultConfig: %w", err)
	}
	clients := app.NewClients(awsCfg)
	if create {
		if err := awslocal.CreateResources(ctx, awslocal.ClientsOf(clients), conf); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "resources ready: table %s, queue %s, schedule group %s\n", conf.TableName, conf.QueueURL, conf.ScheduleGroup)
	}
	a := app.NewAWS(conf, clients, log)
	opts := awslocal.Options{SweepEvery: sweep}
	if os.Getenv("AWS_ENDPOINT_URL") != "" {
		// An emulator never fires schedules: the runner does.
		opts.Schedules = emulator.NewSchedules(awsCfg, conf.ScheduleGroup)
	}
	key, created, err := app.EnsureDevCompany(ctx, a.Store, data)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "created company %q with %d credits\n", app.DevCompany, app.DevCompanyCredits)
	}
	if key != "" {
		fmt.Fprintf(stdout, "dev API key (also in %s): %s\n", filepath.Join(data, app.DevKeyFile), key)
	}
	return listenAndRun(ctx, addr, a.API, awslocal.New(a, log, opts).Run, stdout)
}
