package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flexgate/flexgate/config"
	"github.com/flexgate/flexgate/proxy"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var paths stringList
	fs.Var(&paths, "config", "config `PATH`: a file or a directory of *.yaml/*.yml; repeatable (default $FLEXGATE_CONFIG, comma-separated)")
	listen := fs.String("listen", config.DefaultListen, "`ADDR` of the plain-HTTP listener when the config declares no listeners")
	adminAddr := fs.String("admin-addr", ":9901", "`ADDR` of the admin server (/healthz, /readyz, /metrics, /config); empty disables it")
	clients := fs.String("clients", "", "`FILE` with the client registry (YAML), re-read when it changes")
	logLevel := fs.String("log-level", "info", "`LEVEL` of the JSON log on stdout: debug, info, warn or error")
	accessLog := fs.Bool("access-log", false, "log one JSON line per request")
	drainDelay := fs.Duration("drain-delay", 5*time.Second, "after SIGTERM, keep serving this long with /readyz at 503 before closing listeners")
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "after the drain delay, wait at most this long for requests in flight "+
		"(also on a listener that a reload removes)")
	maxConns := fs.Int("max-connections", 0, "most client connections open at once across all listeners: what the memory limit allows. "+
		"Lowers the config's limits.maxConnections, never raises it; 0 leaves it to the config")
	pprof := fs.Bool("pprof", false, "serve Go's profiler at /debug/pprof/ on the admin server (anyone who reaches the admin port can then profile the process)")
	connected := fs.String("connected-credentials", "", "`DIR` with Anypoint connected-mode credentials (not supported yet)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flexgate run: unexpected argument %q; give config paths with --config\n", fs.Arg(0))
		return 2
	}
	if *maxConns < 0 {
		fmt.Fprintf(stderr, "flexgate run: --max-connections %d: give a positive number, or 0 to leave the cap to the config\n", *maxConns)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "flexgate run: --log-level %q: use debug, info, warn or error\n", *logLevel)
		return 2
	}
	// A config may set the level (a Flex Configuration's logLevel), and a
	// reload change it; without one, the flag's applies.
	var levelVar slog.LevelVar
	levelVar.Set(level)
	applyLevel := func(cfg *config.Config) {
		l := level
		if cfg.LogLevel != "" {
			// Load has checked it.
			_ = l.UnmarshalText([]byte(cfg.LogLevel))
		}
		if old := levelVar.Level(); old != l {
			// Said at the lower of the two levels, where it is seen.
			if l < old {
				levelVar.Set(l)
			}
			slog.Default().Info("log level set", "logLevel", l.String())
			levelVar.Set(l)
		}
	}
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: &levelVar}))
	slog.SetDefault(logger)
	if *connected != "" || os.Getenv("FLEXGATE_CONNECTED_MODE") == "true" {
		logger.Error("connected mode is not supported yet: flexgate runs in local mode only; run it with --config and a Gateway YAML (set anypointPlatform.connectedMode: false in the Helm values)")
		return 1
	}
	if len(paths) == 0 {
		if env := os.Getenv("FLEXGATE_CONFIG"); env != "" {
			for _, p := range strings.Split(env, ",") {
				if p = strings.TrimSpace(p); p != "" {
					paths = append(paths, p)
				}
			}
		}
	}

	opts := proxy.Options{Listen: *listen, AdminAddr: *adminAddr, Logger: logger, DrainDelay: *drainDelay, Version: version,
		MaxConns: *maxConns, Pprof: *pprof, DrainTimeout: *shutdownTimeout}
	if *accessLog {
		opts.AccessLog = stdout
	}
	var cfg *config.Config
	var stopEcho func()
	if len(paths) == 0 {
		var err error
		cfg, stopEcho, err = quickStart(logger)
		if err != nil {
			logger.Error("cannot start the built-in quick-start", "error", err.Error())
			return 1
		}
		defer stopEcho()
	} else {
		var err error
		cfg, err = loadConfig(paths, *clients)
		if err != nil {
			for _, line := range errorLines(err) {
				logger.Error("invalid config", "error", line)
			}
			return 1
		}
		applyLevel(cfg)
	}
	gw, err := proxy.New(cfg, opts)
	if err != nil {
		for _, line := range errorLines(err) {
			logger.Error("cannot start", "error", line)
		}
		return 1
	}
	// Signals are taken over before anything serves, so that a SIGTERM
	// during start-up drains like any other.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if err := gw.Start(); err != nil {
		logger.Error("cannot start", "error", err.Error())
		return 1
	}

	// The watcher and SIGHUP may both ask at once; reloads run one at a
	// time so that the newest files are the ones applied last.
	var reloadMu sync.Mutex
	reload := func(why string) {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		next, err := loadConfig(paths, *clients)
		if err != nil {
			for _, line := range errorLines(err) {
				logger.Error("config reload failed; the previous config keeps serving", "trigger", why, "error", line)
			}
			gw.CountFailedReload()
			return
		}
		if next.Hash == gw.Config().Hash {
			return
		}
		if gw.Apply(next) == nil {
			applyLevel(next)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if len(paths) > 0 {
		watched := append([]string(nil), paths...)
		if *clients != "" {
			watched = append(watched, *clients)
		}
		watch(ctx, watched, logger, func() { reload("file change") })
		// A change made between the first load and the watches is caught
		// here; an unchanged config is left alone.
		reload("start")
	}
	logger.Info("flexgate serving", "version", version, "config", gw.Config().Hash, "routes", len(gw.Config().Routes))

	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if len(paths) > 0 {
				reload("SIGHUP")
			}
			continue
		}
		logger.Info("shutting down", "signal", sig.String())
		break
	}
	signal.Stop(sigs)
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), *drainDelay+*shutdownTimeout)
	defer scancel()
	if err := gw.Shutdown(sctx); err != nil {
		logger.Error("shutdown incomplete", "error", err.Error())
		return 1
	}
	logger.Info("stopped")
	return 0
}
