package dispatcher

// Redis keys. Every key of a case carries the {case_id} hash tag so all of
// them live in one slot of a Redis Cluster and one Lua call may touch them.

func caseKey(caseID string) string { return "case:{" + caseID + "}" }

func seenKey(caseID, eventID string) string { return "case:{" + caseID + "}:seen:" + eventID }
