package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/httpapi"
)

// TestOpenAPIMatchesRouter: every route the router serves is documented,
// with the same authentication, and nothing is documented that does not exist.
func TestOpenAPIMatchesRouter(t *testing.T) {
	t.Parallel()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(httpapi.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	var documented []string
	public := map[string]bool{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			switch method {
			case "get", "put", "post", "patch", "delete", "head", "options", "trace":
			default:
				continue
			}
			op := strings.ToUpper(method) + " " + path
			documented = append(documented, op)
			var o struct {
				Security *[]any `json:"security"`
			}
			_ = json.Unmarshal(raw, &o)
			public[op] = o.Security != nil && len(*o.Security) == 0
		}
	}
	e := setup(t)
	var served []string
	for _, r := range e.api.Routes() {
		op := r.Method + " " + r.Path
		served = append(served, op)
		if public[op] != r.Public {
			t.Errorf("%s: documented public=%v, served public=%v", op, public[op], r.Public)
		}
	}
	slices.Sort(documented)
	slices.Sort(served)
	for _, op := range served {
		if !slices.Contains(documented, op) {
			t.Errorf("served but not documented: %s", op)
		}
	}
	for _, op := range documented {
		if !slices.Contains(served, op) {
			t.Errorf("documented but not served: %s", op)
		}
	}
}

// TestOpenAPIValidatorCatchesDrift proves the response check is live: a
// real response, altered the way a careless change would alter it, fails.
func TestOpenAPIValidatorCatchesDrift(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.mustDo("POST", "/v1/scheduled-communications", "all", smsBody(at(time.Hour)), 201)
	v := openAPIValidator(t)
	for name, mutate := range map[string]func(map[string]any){
		"empty string for null": func(row map[string]any) { row["deal_id"] = "" },
		"missing field":         func(row map[string]any) { delete(row, "next_attempt_at") },
		"unknown status":        func(row map[string]any) { row["status"] = "queued" },
		"extra field":           func(row map[string]any) { row["company_id"] = "acme" },
	} {
		row := r.row(t)
		mutate(row)
		body, _ := json.Marshal(map[string]any{"data": row, "meta": r.Meta})
		req := httptest.NewRequest("GET", "/v1/scheduled-communications/"+row["id"].(string), nil)
		res := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"x"}},
			Body: io.NopCloser(bytes.NewReader(body)), Request: req}
		if ok, _ := v.ValidateHttpResponse(req, res); ok {
			t.Errorf("%s: the validator accepted a response that breaks the document", name)
		}
	}
}
