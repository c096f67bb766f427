package main

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

// app is the loaded configuration and message templates.
type app struct {
	cfg    *rules.Config
	engine *rules.Engine
	tmpl   *templates.Set
}

// loadApp reads templates first, so the configuration can be checked
// against the template names; errors list every problem with file:line.
func loadApp(configPath, templateDir string) (*app, error) {
	if configPath == "" {
		return nil, fmt.Errorf("no configuration: pass --config or set DISPATCHER_CONFIG")
	}
	tmpl, err := templates.New(templateDir)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	cfg, err := rules.LoadFile(configPath, rules.LoadOptions{Templates: tmpl.Has})
	if err != nil {
		return nil, err
	}
	return &app{cfg: cfg, engine: rules.NewEngine(cfg), tmpl: tmpl}, nil
}

// decider builds the decide stage writing intents with w.
func (a *app) decider(rdb redis.UniversalClient, w *kafka.Writer, log logrus.FieldLogger) *dispatcher.Decider {
	return &dispatcher.Decider{
		Engine:   a.engine,
		Suppress: dispatcher.NewSuppressor(rdb),
		Writer:   w,
		Topic:    dispatcher.TopicIntents,
		Log:      log.WithField("component", "decide"),
		Now:      time.Now,
	}
}
