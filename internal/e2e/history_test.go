package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// listEvents reads an event listing through the api function.
func (s *stack) listEvents(path, query string) (data []any, meta map[string]any) {
	s.t.Helper()
	ev := event(s.t, "api-get.json", time.Time{}, nil)
	ev.RawPath, ev.RawQueryString = path, query
	ev.RequestContext.HTTP.Path = path
	status, body := s.call(ev)
	if status != 200 {
		s.t.Fatalf("GET %s?%s: %d %v", path, query, status, body)
	}
	return body["data"].([]any), body["meta"].(map[string]any)
}

// TestHistoryOnAWS: the events of an email's lifecycle are in DynamoDB,
// written with each transition, and readable per row and in the company
// feed through the api function.
func TestHistoryOnAWS(t *testing.T) {
	t.Parallel()
	s := deploy(t, options{})
	due := s.clock.Now().Add(3 * time.Second).Truncate(time.Second)
	status, body := s.call(event(t, "api-create-email.json", due, setTo(uniqueTo(t))))
	if status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	id := body["data"].(map[string]any)["id"].(string)
	s.clock.AdvanceTo(due)
	if n := s.pump(4 * time.Second); n != 1 {
		t.Fatalf("pumped %d SQS messages, want 1", n)
	}
	if got := s.get(id)["status"]; got != "sent" {
		t.Fatalf("status %v after dispatch", got)
	}

	history, meta := s.listEvents("/v1/scheduled-communications/"+id+"/events", "limit=2")
	if len(history) != 2 || meta["has_more"] != true {
		t.Fatalf("first page: %v %v", history, meta)
	}
	rest, _ := s.listEvents("/v1/scheduled-communications/"+id+"/events", "cursor="+meta["next_cursor"].(string))
	var types []string
	for i, e := range append(history, rest...) {
		ev := e.(map[string]any)
		types = append(types, ev["type"].(string))
		if ev["sequence"].(float64) != float64(i+1) {
			t.Errorf("event %d has sequence %v", i, ev["sequence"])
		}
	}
	if got := strings.Join(types, ","); got != "created,attempt_started,sent" {
		t.Fatalf("history %s", got)
	}

	// The feed shows events once they are FeedSettle (15 s) old.
	fresh, _ := s.listEvents("/v1/events", "")
	for _, e := range fresh {
		if e.(map[string]any)["communication_id"] == id && e.(map[string]any)["type"] == "sent" {
			t.Fatalf("the feed shows an event younger than the settle window")
		}
	}
	s.clock.Advance(dynamo.FeedSettle + time.Second)
	feed, meta := s.listEvents("/v1/events", "type=created,sent&limit=100")
	var mine []string
	for _, e := range feed {
		if ev := e.(map[string]any); ev["communication_id"] == id {
			mine = append(mine, ev["type"].(string))
		}
	}
	if got := strings.Join(mine, ","); got != "created,sent" || meta["next_cursor"] == nil {
		t.Fatalf("feed of created,sent: %s (meta %v)", got, meta)
	}
}
