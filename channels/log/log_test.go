package log_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/viogen-alerts/dispatcher/channels"
	chlog "github.com/viogen-alerts/dispatcher/channels/log"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

func message(i int) channels.Message {
	return channels.Message{
		ID: fmt.Sprintf("intent-%d", i), AlertID: "alert-1", CaseRef: "case-1", ContactID: fmt.Sprintf("contact-%d", i),
		Severity: "warning", To: fmt.Sprintf("+34600000%03d", i), Subject: "Aviso", Body: fmt.Sprintf("mensaje %d", i),
	}
}

func TestRingKeepsNewestFirst(t *testing.T) {
	ch := chlog.New("sms", nil, 3)
	if ch.Name() != "sms" {
		t.Errorf("Name = %q", ch.Name())
	}
	if got := ch.Recent(); len(got) != 0 {
		t.Fatalf("Recent on empty = %v", got)
	}
	for i := 1; i <= 2; i++ {
		if _, err := ch.Send(context.Background(), message(i)); err != nil {
			t.Fatal(err)
		}
	}
	assertIDs(t, ch.Recent(), "intent-2", "intent-1")
	for i := 3; i <= 5; i++ {
		r, err := ch.Send(context.Background(), message(i))
		if err != nil || r.Status != "logged" || r.ProviderID != fmt.Sprintf("sms-%d", i) {
			t.Fatalf("receipt %+v, %v", r, err)
		}
	}
	got := ch.Recent()
	assertIDs(t, got, "intent-5", "intent-4", "intent-3")
	if got[0].To != "+34*******05" || got[0].Channel != "sms" || got[0].Body != "mensaje 5" || got[0].ContactID != "contact-5" {
		t.Errorf("newest = %+v", got[0])
	}
}

func assertIDs(t *testing.T, got []chlog.Sent, want ...string) {
	t.Helper()
	ids := make([]string, len(got))
	for i, s := range got {
		ids[i] = s.ID
	}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("Recent ids = %v, want %v", ids, want)
	}
}

func TestLogLineIsMasked(t *testing.T) {
	logs := providertest.CaptureLog()
	ch := chlog.New("email", logs.Logger, 0)
	m := message(7)
	m.To = "jane.doe@example.org"
	if _, err := ch.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	logs.AssertNotContains(t, "jane.doe@example.org", "jane.doe")
	out := logs.String()
	for _, want := range []string{"j***@example.org", "contact-7", "mensaje 7", `"channel":"email"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if s := ch.Recent()[0]; s.To != "j***@example.org" {
		t.Errorf("kept To = %q", s.To)
	}
}

func TestCancelledContext(t *testing.T) {
	ch := chlog.New("pager", nil, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ch.Send(ctx, message(1)); err == nil || channels.IsPermanent(err) {
		t.Errorf("Send on cancelled ctx = %v, want a retryable error", err)
	}
	if len(ch.Recent()) != 0 {
		t.Error("recorded a message it did not send")
	}
}

func TestConcurrentSends(t *testing.T) {
	ch := chlog.New("sms", nil, 50)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			_, _ = ch.Send(context.Background(), message(i))
			_ = ch.Recent()
		})
	}
	wg.Wait()
	got := ch.Recent()
	seen := map[string]bool{}
	for _, s := range got {
		seen[s.ProviderID] = true
	}
	if len(got) != 50 || len(seen) != 50 || got[0].ProviderID != "sms-200" {
		t.Errorf("kept %d (%d distinct), newest %s", len(got), len(seen), got[0].ProviderID)
	}
}

func BenchmarkLogSend(b *testing.B) {
	ch := chlog.New("sms", nil, 200)
	m := message(1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ch.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}
