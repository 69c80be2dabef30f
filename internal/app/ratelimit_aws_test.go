package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// TestRateLimitAcrossInstances: two api instances (two app.AWS over their
// own clients, as two Lambda instances are) share the table. Company A
// spends its burst through both and is refused by both; company B, at the
// same moment, is served; the injected clock refills A's bucket.
func TestRateLimitAcrossInstances(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	conf := config.AWS{
		TableName:     awstest.Unique(t, "t"),
		QueueURL:      strings.TrimSuffix(awstest.Endpoint(t), "/") + "/123456789012/" + awstest.Unique(t, "q"),
		ScheduleGroup: awstest.Unique(t, "g"),
		RateLimit:     ratelimit.Policy{Default: ratelimit.Limit{Rate: 1, Burst: 4}},
	}
	ctx := context.Background()
	first := app.NewClients(cfg)
	if err := dynamo.CreateTable(ctx, first.DynamoDB, conf.TableName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = first.DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(conf.TableName)})
	})
	clk := clock.NewFake(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	instances := []*app.AWS{
		app.NewAWS(conf, first, log, app.WithAWSClock(clk.Now)),
		app.NewAWS(conf, app.NewClients(cfg), log, app.WithAWSClock(clk.Now)),
	}
	keys := map[string]string{}
	for _, co := range []string{"A", "B"} {
		if err := instances[0].Store.CreateCompany(ctx, comms.Company{ID: co, Credits: 10, CreatedAt: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		secret, key, err := auth.NewKey(co, []comms.Scope{comms.ScopeRead}, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := instances[0].Store.CreateAPIKey(ctx, key); err != nil {
			t.Fatal(err)
		}
		keys[co] = secret
	}
	servers := make([]*httptest.Server, len(instances))
	for i, a := range instances {
		servers[i] = httptest.NewServer(a.API)
		defer servers[i].Close()
	}
	get := func(instance int, co string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", servers[instance].URL+"/v1/settings", nil)
		req.Header.Set("Authorization", "Bearer "+keys[co])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, res.Header, body.Error.Code
	}
	for i := range 4 { // A's burst, half through each instance
		if st, h, _ := get(i%2, "A"); st != 200 {
			t.Fatalf("A request %d on instance %d: %d (RateLimit %q); want 200", i, i%2, st, h.Get("RateLimit"))
		}
	}
	for i := range 2 {
		st, h, code := get(i, "A")
		if st != 429 || code != "rate_limited" || h.Get("Retry-After") != "1" || h.Get("RateLimit") != `"company";r=0;t=4` ||
			h.Get("RateLimit-Policy") != `"company";q=4;w=4` {
			t.Fatalf("A over its limit on instance %d: %d %s, Retry-After %q, RateLimit %q, Policy %q", i, st, code,
				h.Get("Retry-After"), h.Get("RateLimit"), h.Get("RateLimit-Policy"))
		}
		if st, _, _ := get(i, "B"); st != 200 {
			t.Fatalf("B on instance %d while A is limited: %d; want 200", i, st)
		}
	}
	clk.Advance(time.Second) // one token back for A
	if st, _, _ := get(1, "A"); st != 200 {
		t.Fatalf("A after 1 s: %d; want 200", st)
	}
	if st, _, _ := get(0, "A"); st != 429 {
		t.Fatalf("A again after 1 s: %d; want 429", st)
	}
}
