package app_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/dispatcherhq/dispatcher/internal/app"
)

// TestGatewayRequestIDs: through the api function's adapter, a request
// without X-Request-Id is given API Gateway's request id; one with its own
// keeps it.
func TestGatewayRequestIDs(t *testing.T) {
	t.Parallel()
	var seen []string
	h := app.GatewayRequestIDs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("X-Request-Id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	proxy := httpadapter.NewV2(h).ProxyWithContext
	ev := events.APIGatewayV2HTTPRequest{RawPath: "/healthz", Headers: map[string]string{},
		RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "JKJaXmPLvHcESHA=",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/healthz"}}}
	if _, err := proxy(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	ev.Headers["x-request-id"] = "mine-1"
	if _, err := proxy(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != "JKJaXmPLvHcESHA" || seen[1] != "mine-1" {
		t.Errorf("request ids seen: %q", seen)
	}
}
