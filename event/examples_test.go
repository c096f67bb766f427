package event

import (
	"bytes"
	"encoding/json"
	"testing"
)

// All data here is synthetic: case ids, units and courts are made up.

const herencia = `"jurisdiction":{"municipality":"13047","province":"13","region":"CM"}`

// upstreamExamples holds one valid message per upstream type.
var upstreamExamples = map[Type]string{
	CaseOpened: `{"id":"evt-her-0001","type":"case.opened","case_id":"C-HER-0001",
		"occurred_at":"2026-03-02T09:15:00+01:00","source":"viogen",` + herencia + `,
		"responsible_unit":"gc-ciudad-real","version":1,"risk":{"level":"medio"}}`,
	RiskAssessed: `{"id":"evt-her-0002","type":"risk.assessed","case_id":"C-HER-0001",
		"occurred_at":"2026-03-03T11:40:00Z","source":"viogen",` + herencia + `,
		"responsible_unit":"gc-ciudad-real","version":2,
		"risk":{"level":"alto","previous":"medio","manual":true}}`,
	IncidentReported: `{"id":"evt-her-0003","type":"incident.reported","case_id":"C-HER-0001",
		"occurred_at":"2026-03-04T22:05:00Z","source":"gc-ciudad-real",` + herencia + `,
		"responsible_unit":"gc-ciudad-real","version":3,
		"incident":{"kind":"threat","reassessment_due_by":"2026-03-05T22:05:00Z"}}`,
	CheckinRecorded: `{"id":"evt-her-0004","type":"checkin.recorded","case_id":"C-HER-0001",
		"occurred_at":"2026-03-05T10:00:00Z","source":"pl-herencia",` + herencia + `,
		"responsible_unit":"gc-ciudad-real","version":4,
		"checkin":{"kind":"visit","unit":"pl-herencia"}}`,
	ProtectionOrderIssued: `{"id":"evt-her-0005","type":"protection_order.issued","case_id":"C-HER-0001",
		"occurred_at":"2026-03-05T13:30:00Z","source":"court",` + herencia + `,
		"responsible_unit":"gc-ciudad-real","version":5,
		"protection_order":{"court":"jviolencia-alcazar-1","measures":["alejamiento_500m","prohibicion_comunicacion"],
		"valid_until":"2026-09-05T00:00:00Z"}}`,
	ProtectionOrderExpired: `{"id":"evt-pmi-0101","type":"protection_order.expired","case_id":"C-PMI-0002",
		"occurred_at":"2026-03-06T00:00:00Z","source":"court",
		"jurisdiction":{"municipality":"07040","province":"07","region":"IB"},
		"responsible_unit":"pn-illes-balears","version":9,
		"protection_order":{"court":"jviolencia-palma-2","valid_until":"2026-03-06T00:00:00Z"}}`,
	BreachReported: `{"id":"evt-her-0006","type":"breach.reported","case_id":"C-HER-0001",
		"occurred_at":"2026-03-06T20:12:00Z","source":"cometa",` + herencia + `,
		"responsible_unit":"gc-ciudad-real","version":6,"breach":{"channel":"cometa"}}`,
	PenitentiaryRelease: `{"id":"evt-pmi-0102","type":"penitentiary.release","case_id":"C-PMI-0001",
		"occurred_at":"2026-03-06T08:00:00Z","source":"penitentiary",
		"jurisdiction":{"municipality":"07040","province":"07","region":"IB"},
		"responsible_unit":"pn-illes-balears","version":4,
		"release":{"effective_at":"2026-03-07T09:00:00+01:00","until":"2026-03-10T20:00:00+01:00",
		"destination_municipality":"07040"}}`,
	DeviceAlarm: `{"id":"evt-her-0007","type":"device.alarm","case_id":"C-HER-0001",
		"occurred_at":"2026-03-06T20:10:30.250Z","source":"cometa",` + herencia + `,
		"responsible_unit":"gc-ciudad-real","alarm":{"kind":"proximity","distance_m":350}}`,
	CaseRelocated: `{"id":"evt-pmi-0103","type":"case.relocated","case_id":"C-PMI-0003",
		"occurred_at":"2026-03-07T12:00:00Z","source":"viogen",
		"jurisdiction":{"municipality":"07040","province":"07","region":"IB"},
		"responsible_unit":"pn-illes-balears","version":7,
		"relocation":{"to":{"municipality":"13047","province":"13","region":"CM"},
		"responsible_unit":"gc-ciudad-real"}}`,
	CaseClosed: `{"id":"evt-pmi-0104","type":"case.closed","case_id":"C-PMI-0002",
		"occurred_at":"2026-03-08T09:00:00Z","source":"viogen",
		"jurisdiction":{"municipality":"07040","province":"07","region":"IB"},
		"responsible_unit":"pn-illes-balears","version":10,"closure":{"reason":"inactivation"}}`,
	CaseReactivated: `{"id":"evt-pmi-0105","type":"case.reactivated","case_id":"C-PMI-0002",
		"occurred_at":"2026-03-09T17:45:00Z","source":"viogen",
		"jurisdiction":{"municipality":"07040","province":"07","region":"IB"},
		"responsible_unit":"pn-illes-balears","version":11,"closure":{"reason":"new_complaint"}}`,
}

// internalExamples holds one valid message per internal type.
var internalExamples = map[Type]string{
	CheckinMissed: `{"id":"tmr-her-0001-checkin-1","type":"checkin.missed","case_id":"C-HER-0001",
		"occurred_at":"2026-03-06T10:00:05Z","source":"dispatcher",` + herencia + `,
		"responsible_unit":"gc-ciudad-real","timer":{"due_at":"2026-03-06T10:00:00Z"}}`,
	ReassessmentOverdue: `{"id":"tmr-her-0001-reassess-1","type":"reassessment.overdue","case_id":"C-HER-0001",
		"occurred_at":"2026-03-05T22:05:02Z","source":"dispatcher",` + herencia + `,
		"responsible_unit":"gc-ciudad-real","timer":{"due_at":"2026-03-05T22:05:00Z"}}`,
	EscalationTimeout: `{"id":"tmr-esc-0001-1-0","type":"escalation.timeout","case_id":"C-HER-0001",
		"occurred_at":"2026-03-03T11:45:01Z","source":"dispatcher",` + herencia + `,
		"responsible_unit":"gc-ciudad-real",
		"timer":{"due_at":"2026-03-03T11:45:00Z","escalation_id":"esc-0001","step":1,"round":0}}`,
	EscalationAcknowledged: `{"id":"ack-esc-0001","type":"escalation.acknowledged","case_id":"C-HER-0001",
		"occurred_at":"2026-03-03T11:43:10Z","source":"dispatcher",` + herencia + `,
		"responsible_unit":"gc-ciudad-real",
		"ack":{"escalation_id":"esc-0001","agency":"gc-ciudad-real","via":"sms"}}`,
}

// compact removes the layout white space of an example.
func compact(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		t.Fatalf("example is not JSON: %v\n%s", err, s)
	}
	return buf.Bytes()
}

// example returns the compact example of type typ, upstream or internal.
func example(t testing.TB, typ Type) []byte {
	t.Helper()
	if s, ok := upstreamExamples[typ]; ok {
		return compact(t, s)
	}
	if s, ok := internalExamples[typ]; ok {
		return compact(t, s)
	}
	t.Fatalf("no example of type %s", typ)
	return nil
}
