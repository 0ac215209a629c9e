// Command noticerelay carries reports of suspected crimes that threaten
// life or safety (DSA Article 18) from online platforms to the police of
// every Member State concerned, and to Europol.
//
//	noticerelay dev   [--config FILE] [--data DIR]
//	noticerelay serve --config FILE [--services a,b,...]
//	noticerelay token
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/noticerelay/noticerelay/pkg/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
