package ops

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/inferq/inferq/internal/config"
)

// Main is the body of every inferq service main: it loads the config,
// builds the logger, runs run with a context that ends on SIGINT or
// SIGTERM, and exits non-zero on error. The second signal ends the context
// passed as hard, for services that drain.
func Main(name string, run func(ctx, hard context.Context, cfg config.Config, log *slog.Logger) error) {
	cfg, err := config.Load(name, os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	log := Logger(cfg.LogFormat, cfg.LogLevel, name)
	ctx, cancel := context.WithCancel(context.Background())
	hard, cancelHard := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		log.Info("stopping", "signal", s.String())
		cancel()
		s = <-sigs
		log.Warn("stopping now", "signal", s.String())
		cancelHard()
	}()
	if err := run(ctx, hard, cfg, log); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
