package dispatcher

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// registerShared registers c with reg, or returns the collector already
// registered under the same description: metrics that several components
// of one process update (consumer lag: ingest and deliver) are created by
// whichever starts first and shared. A nil reg leaves c unregistered.
func registerShared[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(C); ok {
				return ex
			}
		}
		panic(err)
	}
	return c
}
