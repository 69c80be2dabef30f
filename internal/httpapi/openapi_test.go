package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
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

// TestRouteScopesMatchOpenAPI: the route table is the one place that holds
// each operation's static scopes (the service checks only the channel's
// scope, which depends on the data), so it must say what the document's
// x-required-scopes say: any_of ⇔ AnyOf, all_of ⇔ all of Scopes, and the
// by_channel scopes are the channels' own.
func TestRouteScopesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	type required struct {
		AnyOf     []comms.Scope            `json:"any_of"`
		AllOf     []comms.Scope            `json:"all_of"`
		ByChannel map[string][]comms.Scope `json:"by_channel"`
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(httpapi.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	e := setup(t)
	for _, r := range e.api.Routes() {
		op := r.Method + " " + r.Path
		var o struct {
			Required *required `json:"x-required-scopes"`
		}
		if raw, ok := doc.Paths[r.Path][strings.ToLower(r.Method)]; ok {
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Fatalf("%s: %v", op, err)
			}
		}
		switch {
		case r.Public && o.Required != nil:
			t.Errorf("%s: public route, but the document requires scopes %+v", op, *o.Required)
		case r.Public:
		case o.Required == nil:
			t.Errorf("%s: the route requires %v but the document has no x-required-scopes", op, r.Scopes)
		case len(r.Scopes) == 0:
			t.Errorf("%s: a route behind a key must name its scopes", op)
		case r.AnyOf && (!slices.Equal(r.Scopes, o.Required.AnyOf) || o.Required.AllOf != nil):
			t.Errorf("%s: route any of %v, document %+v", op, r.Scopes, *o.Required)
		case !r.AnyOf && (!slices.Equal(r.Scopes, o.Required.AllOf) || o.Required.AnyOf != nil):
			t.Errorf("%s: route all of %v, document %+v", op, r.Scopes, *o.Required)
		}
		if o.Required == nil {
			continue
		}
		for ch, scopes := range o.Required.ByChannel {
			if want := comms.Channel(ch).Scope(); want == "" || !slices.Equal(scopes, []comms.Scope{want}) {
				t.Errorf("%s: by_channel %s = %v, want [%s]", op, ch, scopes, want)
			}
		}
	}
}

// TestEmbeddedDocumentIsOpenAPIJSON: the document served (embedded
// gzipped) is openapi.json as it is in the repository; after editing
// openapi.json, run `go generate ./internal/httpapi`.
func TestEmbeddedDocumentIsOpenAPIJSON(t *testing.T) {
	src, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src, httpapi.OpenAPI()) {
		t.Fatal("the embedded openapi.json.gz is not openapi.json: run `go generate ./internal/httpapi`")
	}
}
