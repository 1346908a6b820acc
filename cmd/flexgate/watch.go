package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/flexgate/flexgate/config"
)

// debounce gathers the burst of events one edit or one ConfigMap update
// makes into a single reload.
const debounce = 300 * time.Millisecond

// watch starts watching paths and returns once the watches are in place;
// from then on it calls onChange after files under paths change, until ctx
// ends. It watches directories, not files: editors replace files and
// Kubernetes swaps the ..data symlink of a ConfigMap volume, and both are
// seen only there. A config directory is read with its subdirectories, so
// they are watched too, and so is one created later.
func watch(ctx context.Context, paths []string, logger *slog.Logger, onChange func()) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		logger.Error("cannot watch config files; reload with SIGHUP", "error", err.Error())
		return
	}
	for _, p := range paths {
		if st, err := os.Stat(p); err != nil || !st.IsDir() {
			// A file not there yet is watched for in its directory.
			addWatch(w, filepath.Dir(p), logger)
		}
	}
	// Watching a directory again is a no-op, and one removed and made
	// again is watched anew.
	watchDirs := func() {
		for _, dir := range config.WatchDirs(paths) {
			addWatch(w, dir, logger)
		}
	}
	watchDirs()
	go loop(ctx, w, logger, func() {
		watchDirs()
		onChange()
	})
}

func addWatch(w *fsnotify.Watcher, dir string, logger *slog.Logger) {
	if err := w.Add(dir); err != nil {
		logger.Error("cannot watch config directory; reload with SIGHUP", "dir", dir, "error", err.Error())
	}
}

func loop(ctx context.Context, w *fsnotify.Watcher, logger *slog.Logger, onChange func()) {
	defer w.Close()
	var timer *time.Timer
	fire := make(chan struct{}, 1)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if timer == nil {
				timer = time.AfterFunc(debounce, func() {
					select {
					case fire <- struct{}{}:
					default:
					}
				})
			} else {
				timer.Reset(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			logger.Warn("config watch error", "error", err.Error())
		case <-fire:
			onChange()
		}
	}
}
