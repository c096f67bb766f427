package main

import (
	"context"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

// reloadLoop reloads the configuration on every receive from reload
// until ctx ends.
func reloadLoop(ctx context.Context, reload <-chan struct{}, s settings, live *dispatcher.Live, m *dispatcher.ConfigMetrics, log logrus.FieldLogger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			_ = reloadConfig(s, live, m, log)
		}
	}
}

// reloadConfig reads and validates the configuration and templates as
// startup does, and puts them in use at once. On any error the running
// configuration stays: every error is logged (each with its file:line)
// and dispatcher_config_reload_total{result="failure"} counts it.
// Channels, providers and secrets come from the environment and are not
// reloaded.
func reloadConfig(s settings, live *dispatcher.Live, m *dispatcher.ConfigMetrics, log logrus.FieldLogger) error {
	log = log.WithField("config", s.config)
	hash, err := dispatcher.ConfigHash(s.config)
	var a *app
	if err == nil {
		a, err = loadApp(s.config, s.templateDir)
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				log.WithField("error", line).Error("configuration reload failed: " + line)
			}
		}
		log.Error("configuration reload failed: the running configuration stays in use")
		m.Reloaded("", err)
		return err
	}
	live.Swap(a.snapshot())
	m.Reloaded(hash, nil)
	log.WithField("hash", hash).Info("configuration reloaded")
	return nil
}
