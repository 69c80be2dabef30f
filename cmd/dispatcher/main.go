// Command dispatcher runs Dispatcher as one local process on the embedded
// store (`serve`) and administers it (`companies create`, `keys create`,
// `keys list`, `keys revoke`). `dispatcher --help` lists the commands,
// `dispatcher <command> --help` their flags; `dispatcher completion bash`
// prints a shell completion script.
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
		stop()
		os.Exit(1)
	}
}

// realMain runs the command args name, writing its output to stdout and
// its logs to stderr; the error it returns is the one line to show.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRoot(stdout, stderr)
	root.SetArgs(goStyleFlags(root, args))
	return root.ExecuteContext(ctx)
}
