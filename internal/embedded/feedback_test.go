package embedded_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

// TestDeliveryFeedbackOnTheEmbeddedProduct is the walkthrough as a
// newcomer does it on `make dev`: the mailbox simulator's complaint, bounce
// and success addresses, the suppression they leave, a second email to a
// suppressed address failing without a send, the suppression lifted by
// DELETE and the next email sent; and the SMS simulator numbers.
func TestDeliveryFeedbackOnTheEmbeddedProduct(t *testing.T) {
	t.Parallel()
	c, clk, _ := startProduct(t)
	at := func() string { return clk.Now().Format(time.RFC3339Nano) }
	email := func(to string) map[string]any {
		return c.do("POST", "/v1/scheduled-communications", fmt.Sprintf(
			`{"channel":"email","scheduled_for":%q,"payload":{"to_email":%q,"subject":"Hi","html_body":"<p>Hi</p>"}}`, at(), to), 201)
	}
	id := func(res map[string]any) string { return res["data"].(map[string]any)["id"].(string) }
	outboxLines := func(rowID string) int {
		lines, err := devsink.ReadOutbox(filepath.Join(c.dir, embedded.OutboxFile))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range lines {
			if l.CommunicationID == rowID {
				n++
			}
		}
		return n
	}
	// deliver settles the row, then moves the clock past the reports' delay
	// and waits for the delivery status they bring.
	deliver := func(rowID, want string) map[string]any {
		if got := c.settle(clk, rowID)["status"]; got != "sent" {
			t.Fatalf("row %s is %v, want sent (SES accepts the simulator's addresses)", rowID, got)
		}
		clk.Advance(time.Second)
		return c.waitDelivery(rowID, want)
	}

	complaint := id(email("complaint@simulator.amazonses.com"))
	row := deliver(complaint, "complained")
	if row["delivery_status_at"] == nil || row["status"] != "sent" {
		t.Fatalf("complained row: %v", row)
	}
	evs := c.events("/v1/scheduled-communications/"+complaint+"/events", 10)
	if got := strings.Join(types(evs), ","); got != "created,attempt_started,sent,delivered,complained" {
		t.Fatalf("history %s", got)
	}
	if d := evs[4]["data"].(map[string]any); d["suppressed"] != true || d["provider_message_id"] != row["provider_message_id"] {
		t.Fatalf("complained data %v", d)
	}
	sup := c.do("GET", "/v1/suppressions?channel=email", "", 200)["data"].([]any)
	if len(sup) != 1 || sup[0].(map[string]any)["recipient"] != "complaint@simulator.amazonses.com" ||
		sup[0].(map[string]any)["reason"] != "complaint" || sup[0].(map[string]any)["communication_id"] != complaint {
		t.Fatalf("suppressions %v", sup)
	}

	// A second email to it: accepted with a warning, then failed without a send.
	second := email("Complaint@Simulator.AmazonSES.com")
	warnings := second["meta"].(map[string]any)["warnings"].([]any)
	if len(warnings) != 1 || warnings[0].(map[string]any)["code"] != "recipient_suppressed" || warnings[0].(map[string]any)["field"] != "payload.to_email" {
		t.Fatalf("create warnings %v", warnings)
	}
	got := c.settle(clk, id(second))
	if got["status"] != "failed" || got["last_error"].(map[string]any)["code"] != "recipient_suppressed" || got["attempt_count"] != 0.0 {
		t.Fatalf("email to a suppressed address: %v", got)
	}
	if n := outboxLines(id(second)); n != 0 {
		t.Fatalf("%d outbox lines for a suppressed recipient, want 0", n)
	}

	// Lifted: the next one is sent.
	lifted := c.do("DELETE", "/v1/suppressions/email/complaint@simulator.amazonses.com", "", 200)["data"].(map[string]any)
	if lifted["active"] != false || lifted["lifted_by"] == nil || lifted["lifted_at"] == nil {
		t.Fatalf("lifted %v", lifted)
	}
	// Lifting it again is idempotent: the lifted record, unchanged.
	if again := c.do("DELETE", "/v1/suppressions/email/complaint@simulator.amazonses.com", "", 200)["data"].(map[string]any); again["lifted_at"] != lifted["lifted_at"] || again["active"] != false {
		t.Fatalf("lifted again: %v, want %v", again, lifted)
	}
	c.do("DELETE", "/v1/suppressions/email/never@example.com", "", 404)
	third := id(email("complaint@simulator.amazonses.com"))
	if got := c.settle(clk, third)["status"]; got != "sent" || outboxLines(third) != 1 {
		t.Fatalf("after the lift: %v, %d lines", got, outboxLines(third))
	}
	if all := c.do("GET", "/v1/suppressions?include_lifted=true", "", 200)["data"].([]any); len(all) != 1 {
		t.Fatalf("with lifted: %v", all)
	}
	// It complains again: suppressed again, the earlier lift kept with who and when.
	clk.Advance(time.Second)
	c.waitDelivery(third, "complained")
	resuppressed := c.do("GET", "/v1/suppressions/email/complaint@simulator.amazonses.com", "", 200)["data"].(map[string]any)
	lifts := resuppressed["lifts"].([]any)
	if resuppressed["active"] != true || len(lifts) != 1 || lifts[0].(map[string]any)["lifted_by"] != lifted["lifted_by"] ||
		lifts[0].(map[string]any)["communication_id"] != complaint {
		t.Fatalf("suppressed again: %v", resuppressed)
	}

	bounce := id(email("bounce@simulator.amazonses.com"))
	if row := deliver(bounce, "bounced"); row["delivery_detail"] != "Permanent/General" {
		t.Fatalf("bounced row: %v", row)
	}
	c.do("GET", "/v1/suppressions/email/bounce@simulator.amazonses.com", "", 200)
	deliver(id(email("success@simulator.amazonses.com")), "delivered")
	if got := c.do("GET", "/v1/scheduled-communications?delivery_status=bounced", "", 200)["data"].([]any); len(got) != 1 || got[0].(map[string]any)["id"] != bounce {
		t.Fatalf("delivery_status=bounced lists %v", got)
	}

	// SMS: the simulator's failure number, and a number that opted out.
	phone := "6b1f3c2a-8d4e-4a5b-9c6d-7e8f9a0b1c2d"
	c.do("PUT", "/v1/phone-numbers/"+phone, `{"e164":"+61412345678","capabilities":["sms"],"label":"dev"}`, 200)
	sms := func(to string) string {
		return id(c.do("POST", "/v1/scheduled-communications", fmt.Sprintf(
			`{"channel":"sms","scheduled_for":%q,"payload":{"to_number":%q,"message_body":"Hi","phone_number_id":%q}}`, at(), to, phone), 201))
	}
	deliver(sms(devsink.SMSSimulatorSuccess), "delivered")
	deliver(sms(devsink.SMSSimulatorFailure), "undeliverable")
	if row := deliver(sms("+61412348888"), "opted_out"); row["delivery_detail"] != devsink.ProviderResponseOptedOut {
		t.Fatalf("opted out: %v", row)
	}
	c.do("GET", "/v1/suppressions/sms/+61412348888", "", 200)
	again := sms("+61412348888")
	if got := c.settle(clk, again); got["last_error"].(map[string]any)["code"] != "recipient_suppressed" {
		t.Fatalf("SMS to an opted-out number: %v", got)
	}
}

// TestEveryWriteWarnsOfSuppressedRecipients: the create and the edit of a
// row both say which of its recipients — the To and each cc — the company
// has suppressed, by payload field; recipients that are not suppressed
// bring no warning.
func TestEveryWriteWarnsOfSuppressedRecipients(t *testing.T) {
	t.Parallel()
	c, clk, _ := startProduct(t)
	c.do("PUT", "/v1/suppressions", `{"channel":"email","recipient":"gone@example.com"}`, 201)
	later := clk.Now().Add(24 * time.Hour).Format(time.RFC3339)
	fields := func(res map[string]any) string {
		var out []string
		for _, w := range res["meta"].(map[string]any)["warnings"].([]any) {
			if w.(map[string]any)["code"] != "recipient_suppressed" {
				t.Fatalf("warning %v", w)
			}
			out = append(out, w.(map[string]any)["field"].(string))
		}
		return strings.Join(out, ",")
	}
	created := c.do("POST", "/v1/scheduled-communications", fmt.Sprintf(
		`{"channel":"email","scheduled_for":%q,"payload":{"to_email":"sarah@example.com","cc":["ok@example.com","Gone@Example.com"],"subject":"Hi","html_body":"<p>Hi</p>"}}`, later), 201)
	if got := fields(created); got != "payload.cc[1]" {
		t.Fatalf("create warns of %q, want payload.cc[1]", got)
	}
	id := created["data"].(map[string]any)["id"].(string)
	edited := c.do("PATCH", "/v1/scheduled-communications/"+id, `{"payload":{"to_email":"gone@example.com","cc":["ok@example.com"]}}`, 200)
	if got := fields(edited); got != "payload.to_email" {
		t.Fatalf("edit warns of %q, want payload.to_email", got)
	}
	clean := c.do("PATCH", "/v1/scheduled-communications/"+id, `{"payload":{"to_email":"sarah@example.com"}}`, 200)
	if got := fields(clean); got != "" {
		t.Fatalf("edit to unsuppressed recipients warns of %q", got)
	}
}
