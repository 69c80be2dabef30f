package app

import (
	"net/http"
	"strings"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// GatewayRequestIDs is the api function's handler around h: a request that
// brings no X-Request-Id gets API Gateway's request id
// (requestContext.requestId, its trailing base64 "=" dropped: httpapi
// takes letters, digits and ._:- only), so the id the API answers, logs
// and stores on the fires it arms is the one API Gateway's access log and
// metrics name. A request with its own X-Request-Id keeps it.
func GatewayRequestIDs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Request-Id") == "" {
			if rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok {
				if id := strings.TrimRight(rc.RequestID, "="); id != "" {
					r.Header.Set("X-Request-Id", id)
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}
