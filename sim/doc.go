// Package sim runs the real decide pipeline on a virtual clock: the
// simulator behind `dispatcher simulate` and `dispatcher test`.
//
// What runs is production code: events are decoded by the ingest's own
// batch path (dispatcher.Ingest.Process), case state lives in an embedded
// Redis (miniredis) running the real Lua scripts, and the rules,
// suppression windows, escalation ladder, timers and schedules are the
// dispatcher's own stages. Only the edges differ: Kafka is replaced by
// in-memory topics (a dispatcher.Sink), time by a virtual clock that jumps
// to the next input, timer or schedule firing instead of sleeping, and the
// deliver stage by a check that every notification renders with the real
// templates (every send is taken as accepted: channel fallbacks and
// provider failures are not simulated).
package sim
