// Command dispatcher runs Dispatcher as one local process on the embedded
// store (`serve`) and administers it (`companies create`, `keys create`,
// `keys revoke`).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // IANA zones even where the system has none
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dispatcher:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  dispatcher serve [--addr 127.0.0.1:8080] [--data .data] [--backend embedded|aws [--create-resources]]
  dispatcher companies create --data DIR --id ID --credits N [--timezone TZ]
  dispatcher keys create --data DIR --company ID --scopes s1,s2
  dispatcher keys revoke --data DIR --company ID --id KEY_ID
  dispatcher keys list --data DIR --company ID
Admin commands take --backend aws to act on the DynamoDB table named by DISPATCHER_TABLE_NAME.`

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("no command\n%s", usage)
	}
	switch cmd, rest := args[0], args[1:]; {
	case cmd == "serve":
		return serve(ctx, rest, stdout, stderr)
	case cmd == "companies" && len(rest) > 0 && rest[0] == "create":
		return companiesCreate(ctx, rest[1:], stdout)
	case cmd == "keys" && len(rest) > 0 && rest[0] == "create":
		return keysCreate(ctx, rest[1:], stdout)
	case cmd == "keys" && len(rest) > 0 && rest[0] == "revoke":
		return keysRevoke(ctx, rest[1:], stdout)
	case cmd == "keys" && len(rest) > 0 && rest[0] == "list":
		return keysList(ctx, rest[1:], stdout)
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}
