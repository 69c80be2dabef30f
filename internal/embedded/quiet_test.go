package embedded_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestQuietHoursOnTheEmbeddedProduct is the case as a user tries
// it on `make dev`, through the HTTP API on a fake clock: with
// quiet_hours.voice_call 08:00–21:00 and timezone_from_phone_number, a
// call to a New York number scheduled for 03:00 New York time with no
// timezone is due, and placed, at 08:00 New York; one to area code 208
// (Boise and Los Angeles) at the later opening, 08:00 Los Angeles. An SMS
// due before the SMS quiet hours added later open is deferred at fire
// time, with the reason in its history.
func TestQuietHoursOnTheEmbeddedProduct(t *testing.T) {
	t.Parallel()
	c, clk, _ := startProduct(t) // base: Monday 2030-01-07 09:00Z; New York is on EST (-05:00)
	c.do("PUT", "/v1/phone-numbers/"+phoneID, `{"e164":"+61412345678","capabilities":["voice","sms"]}`, 200)
	c.do("PUT", "/v1/voice-agents/"+agentID, `{"provider":"retell","agent_id":"agent_1","phone_number_id":"`+phoneID+`"}`, 200)
	settings := `{"timezone":"Australia/Sydney","timezone_from_phone_number":true,"quiet_hours":{"voice_call":{"start":"08:00","end":"21:00"}}}`
	got := c.do("PUT", "/v1/settings", settings, 200)["data"].(map[string]any)
	if q := got["quiet_hours"].(map[string]any)["voice_call"].(map[string]any); q["start"] != "08:00" || q["end"] != "21:00" || got["timezone_from_phone_number"] != true {
		t.Fatalf("settings: %v", got)
	}
	call := func(number string) map[string]any {
		return c.do("POST", "/v1/scheduled-communications", `{"channel":"voice_call","scheduled_for":"2030-01-08T03:00:00-05:00",
"payload":{"voice_agent_outbound_config_id":"`+agentID+`","to_number":"`+number+`","metadata":{"simulate":"conversation"}}}`, 201)["data"].(map[string]any)
	}
	ny := call("+12125550123")
	if ny["next_attempt_at"] != "2030-01-08T13:00:00Z" || ny["timezone"] != nil || ny["timezone_source"] != "phone_number" ||
		fmt.Sprint(ny["timezones"]) != "[America/New_York]" {
		t.Fatalf("New York call: next_attempt_at %v, timezone %v, timezone_source %v, timezones %v",
			ny["next_attempt_at"], ny["timezone"], ny["timezone_source"], ny["timezones"])
	}
	idaho := call("+12085550123")
	// 08:00 in Boise (MST) is 15:00Z, 08:00 in Los Angeles (PST) 16:00Z.
	if idaho["next_attempt_at"] != "2030-01-08T16:00:00Z" || fmt.Sprint(idaho["timezones"]) != "[America/Boise America/Los_Angeles]" {
		t.Fatalf("Idaho call: next_attempt_at %v, timezones %v", idaho["next_attempt_at"], idaho["timezones"])
	}
	sms := c.do("POST", "/v1/scheduled-communications", `{"channel":"sms","scheduled_for":"2030-01-08T13:30:00Z",
"payload":{"phone_number_id":"`+phoneID+`","to_number":"+12125550123","message_body":"Hi"}}`, 201)["data"].(map[string]any)
	if sms["next_attempt_at"] != "2030-01-08T13:30:00Z" {
		t.Fatalf("SMS before SMS quiet hours: %v", sms["next_attempt_at"])
	}
	// The company then adds SMS quiet hours: 08:30 New York is before 09:00.
	c.do("PUT", "/v1/settings", strings.Replace(settings, `"quiet_hours":{`, `"quiet_hours":{"sms":{"start":"09:00","end":"20:00"},`, 1), 200)

	// 03:00 in New York passes with nothing placed; at 08:00 the New York
	// call is placed and the Idaho one still waits.
	clk.Set(time.Date(2030, 1, 8, 8, 0, 0, 0, time.UTC))
	if row := c.get(ny["id"].(string)); row["status"] != "pending" || row["attempt_count"] != float64(0) {
		t.Fatalf("New York call at 03:00 New York: %s, %v attempts", row["status"], row["attempt_count"])
	}
	clk.Set(time.Date(2030, 1, 8, 13, 0, 0, 0, time.UTC))
	placed := c.waitPlaced(ny["id"].(string))
	if placed["sent_at"] != "2030-01-08T13:00:00Z" {
		t.Fatalf("New York call placed at %v", placed["sent_at"])
	}
	if row := c.get(idaho["id"].(string)); row["status"] != "pending" || row["attempt_count"] != float64(0) {
		t.Fatalf("Idaho call at 08:00 New York: %s, %v attempts", row["status"], row["attempt_count"])
	}
	if got := strings.Join(types(c.events("/v1/scheduled-communications/"+ny["id"].(string)+"/events", 50))[:3], ","); got != "created,attempt_started,sent" {
		t.Fatalf("New York call's history %s", got)
	}

	// 13:30Z: the SMS comes due and is deferred to 09:00 New York (14:00Z).
	clk.Set(time.Date(2030, 1, 8, 13, 30, 0, 0, time.UTC))
	deferred := c.waitEvents(sms["id"].(string), "created,deferred")
	if d := deferred[1]["data"].(map[string]any); d["reason"] != "quiet_hours" || d["next_attempt_at"] != "2030-01-08T14:00:00Z" {
		t.Fatalf("deferred: %v", d)
	}
	if row := c.get(sms["id"].(string)); row["status"] != "pending" || row["next_attempt_at"] != "2030-01-08T14:00:00Z" {
		t.Fatalf("deferred SMS: %s, next_attempt_at %v", row["status"], row["next_attempt_at"])
	}
	clk.Set(time.Date(2030, 1, 8, 14, 0, 0, 0, time.UTC))
	if got := c.settle(clk, sms["id"].(string)); got["status"] != "sent" || got["sent_at"] != "2030-01-08T14:00:00Z" {
		t.Fatalf("SMS at 09:00 New York: %s at %v", got["status"], got["sent_at"])
	}

	clk.Set(time.Date(2030, 1, 8, 16, 0, 0, 0, time.UTC))
	if placed := c.waitPlaced(idaho["id"].(string)); placed["sent_at"] != "2030-01-08T16:00:00Z" {
		t.Fatalf("Idaho call placed at %v", placed["sent_at"])
	}
}

func (c client) get(id string) map[string]any {
	c.t.Helper()
	return c.do("GET", "/v1/scheduled-communications/"+id, "", 200)["data"].(map[string]any)
}

// waitPlaced polls the row until its call is placed (a bounded wait for
// what must happen, not a timing assertion) and returns it.
func (c client) waitPlaced(id string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		row := c.get(id)
		if row["provider_message_id"] != nil {
			return row
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("row %s: not placed after %v: %s", id, patience, row["status"])
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// waitEvents polls the row's history until its types read want (a bounded
// wait for what must happen) and returns the events.
func (c client) waitEvents(id, want string) []map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		evs := c.events("/v1/scheduled-communications/"+id+"/events", 50)
		if strings.Join(types(evs), ",") == want {
			return evs
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("row %s: history %v after %v, want %s", id, types(evs), patience, want)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}
