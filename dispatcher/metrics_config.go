package dispatcher

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
)

// ConfigMetrics describe the loaded configuration: its hash and how
// reloads went.
type ConfigMetrics struct {
	Reloads *prometheus.CounterVec
	Info    *prometheus.GaugeVec
}

// NewConfigMetrics registers dispatcher_config_reload_total{result} (both
// results start at 0) and dispatcher_config_info{hash}.
func NewConfigMetrics(reg prometheus.Registerer) *ConfigMetrics {
	m := &ConfigMetrics{
		Reloads: registerShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatcher_config_reload_total",
			Help: "Configuration reloads by result (success, failure); a failed reload keeps the running configuration.",
		}, []string{"result"})),
		Info: registerShared(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dispatcher_config_info",
			Help: "1 for the configuration in use, labelled with the first 12 hex digits of its file's SHA-256.",
		}, []string{"hash"})),
	}
	m.Reloads.WithLabelValues("success")
	m.Reloads.WithLabelValues("failure")
	return m
}

// Loaded marks the configuration with hash as the one in use.
func (m *ConfigMetrics) Loaded(hash string) {
	m.Info.Reset()
	m.Info.WithLabelValues(hash).Set(1)
}

// Reloaded counts a reload; on success hash is the new configuration's.
func (m *ConfigMetrics) Reloaded(hash string, err error) {
	if err != nil {
		m.Reloads.WithLabelValues("failure").Inc()
		return
	}
	m.Reloads.WithLabelValues("success").Inc()
	m.Loaded(hash)
}

// ConfigHash is the first 12 hex digits of the SHA-256 of the file.
func ConfigHash(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("hash configuration: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12], nil
}
