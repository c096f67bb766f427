package dispatcher

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// RegisterRuntimeMetrics registers dispatcher_build_info{version,goversion}
// and the Go runtime and process collectors with reg.
func RegisterRuntimeMetrics(reg prometheus.Registerer) {
	version, goVersion := "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dispatcher_build_info",
		Help: "1, labelled with the dispatcher's module version and the Go version it was built with.",
	}, []string{"version", "goversion"})
	info.WithLabelValues(version, goVersion).Set(1)
	reg.MustRegister(info, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}
