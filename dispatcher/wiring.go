package dispatcher

import (
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/rules"
)

// DecideDeps is what the decide stage is built from: one construction
// for `dispatcher run` and the simulator (package sim), so they run the
// same stage.
type DecideDeps struct {
	Rules  *rules.Config
	Engine *rules.Engine
	Live   *Live // nil: Rules and Engine never change
	Redis  redis.UniversalClient
	Writer Sink
	Store  *EscalationStore
	Log    logrus.FieldLogger
	Now    func() time.Time
	// Silences, when set, are enforced (Decider.Silences).
	Silences *SilenceStore
}

// NewDecider builds the decide stage with its escalation ladder, writing
// intents to the intents topic and acknowledgements to the results topic.
func NewDecider(d DecideDeps) *Decider {
	l := d.Log.WithField("component", "decide")
	return &Decider{
		Engine:   d.Engine,
		Suppress: NewSuppressor(d.Redis),
		Writer:   d.Writer,
		Topic:    TopicIntents,
		Log:      l,
		Now:      d.Now,
		Live:     d.Live,
		Silences: d.Silences,
		Ladder: &Ladder{Rules: d.Rules, Live: d.Live, Store: d.Store, Writer: d.Writer, Intents: TopicIntents,
			Results: TopicResults, Log: l.WithField("component", "ladder")},
	}
}
