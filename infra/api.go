package infra

import (
	"encoding/json"
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// AccessLogFields are the fields of each JSON access log line of the HTTP
// API, as API Gateway $context variables.
var AccessLogFields = map[string]string{
	"requestId":          "$context.requestId",
	"extendedRequestId":  "$context.extendedRequestId",
	"ip":                 "$context.identity.sourceIp",
	"userAgent":          "$context.identity.userAgent",
	"requestTime":        "$context.requestTime",
	"requestTimeEpoch":   "$context.requestTimeEpoch",
	"httpMethod":         "$context.httpMethod",
	"path":               "$context.path",
	"routeKey":           "$context.routeKey",
	"protocol":           "$context.protocol",
	"status":             "$context.status",
	"responseLength":     "$context.responseLength",
	"responseLatency":    "$context.responseLatency",
	"integrationStatus":  "$context.integrationStatus",
	"integrationLatency": "$context.integrationLatency",
	"integrationError":   "$context.integrationErrorMessage",
	"errorMessage":       "$context.error.message",
}

// accessLogFormat is AccessLogFields as one JSON line (keys sorted).
func accessLogFormat() string {
	b, err := json.Marshal(AccessLogFields)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return string(b)
}

// HTTPAPIProps configures an HTTPAPI.
type HTTPAPIProps struct {
	// Name is the API's name.
	Name string
	// Handler is the function every route proxies to (payload format 2.0).
	Handler awslambda.IFunction
	// ThrottleRate and ThrottleBurst limit the stage's default route
	// throughput (requests per second, burst). Both > 0.
	ThrottleRate, ThrottleBurst float64
	// LogRetention is how long the access logs are kept. Required.
	LogRetention awslogs.RetentionDays
	// Retain keeps the access log group when the stack is deleted.
	Retain bool
	// DomainName and CertificateArn, both or neither: serve the API on
	// this custom domain (a regional API Gateway domain name with the ACM
	// certificate, TLS 1.2, mapped to the $default stage) and disable the
	// default execute-api endpoint.
	DomainName, CertificateArn string
}

// HTTPAPI is an API Gateway HTTP API whose $default route proxies every
// request to one function, with a throttled $default stage that writes
// JSON access logs.
type HTTPAPI struct {
	// Construct is the scope holding the resources.
	Construct constructs.Construct
	// API is the HTTP API.
	API awsapigatewayv2.HttpApi
	// Stage is the auto-deployed $default stage.
	Stage awsapigatewayv2.HttpStage
	// AccessLogs holds the access logs.
	AccessLogs awslogs.LogGroup
	// Domain is the custom domain name, or nil when there is none.
	Domain awsapigatewayv2.DomainName
}

// NewHTTPAPI creates the API, its stage and its access log group.
func NewHTTPAPI(scope constructs.Construct, id string, props *HTTPAPIProps) (*HTTPAPI, error) {
	if props == nil || props.Handler == nil {
		return nil, fmt.Errorf("infra.NewHTTPAPI: Handler is required")
	}
	if props.Name == "" {
		return nil, fmt.Errorf("infra.NewHTTPAPI: Name is required")
	}
	if props.ThrottleRate <= 0 || props.ThrottleBurst <= 0 {
		return nil, fmt.Errorf("infra.NewHTTPAPI: ThrottleRate %v and ThrottleBurst %v must be positive", props.ThrottleRate, props.ThrottleBurst)
	}
	if props.LogRetention == "" {
		return nil, fmt.Errorf("infra.NewHTTPAPI: LogRetention is required")
	}
	if (props.DomainName == "") != (props.CertificateArn == "") {
		return nil, fmt.Errorf("infra.NewHTTPAPI: DomainName %q and CertificateArn %q: give both or neither", props.DomainName, props.CertificateArn)
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	removal := awscdk.RemovalPolicy_DESTROY
	if props.Retain {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	logs := awslogs.NewLogGroup(c, jsii.String("AccessLogs"), &awslogs.LogGroupProps{
		Retention:     props.LogRetention,
		RemovalPolicy: removal,
	})
	api := awsapigatewayv2.NewHttpApi(c, jsii.String("Api"), &awsapigatewayv2.HttpApiProps{
		ApiName:            jsii.String(props.Name),
		Description:        jsii.String("Dispatcher HTTP API: every route proxies to the api function, which authenticates requests itself."),
		CreateDefaultStage: jsii.Bool(false),
		// With a custom domain, the domain is the only way in.
		DisableExecuteApiEndpoint: jsii.Bool(props.DomainName != ""),
		DefaultIntegration: awsapigatewayv2integrations.NewHttpLambdaIntegration(jsii.String("Handler"), props.Handler, &awsapigatewayv2integrations.HttpLambdaIntegrationProps{
			PayloadFormatVersion: awsapigatewayv2.PayloadFormatVersion_VERSION_2_0(),
		}),
	})
	stage := awsapigatewayv2.NewHttpStage(c, jsii.String("Stage"), &awsapigatewayv2.HttpStageProps{
		HttpApi:    api,
		StageName:  jsii.String("$default"),
		AutoDeploy: jsii.Bool(true),
		Throttle: &awsapigatewayv2.ThrottleSettings{
			RateLimit:  jsii.Number(props.ThrottleRate),
			BurstLimit: jsii.Number(props.ThrottleBurst),
		},
	})
	// The L2 stage takes access log settings only as a jsii interface;
	// set them on the CloudFormation resource.
	cfn := stage.Node().DefaultChild().(awsapigatewayv2.CfnStage)
	cfn.SetAccessLogSettings(&awsapigatewayv2.CfnStage_AccessLogSettingsProperty{
		DestinationArn: logs.LogGroupArn(),
		Format:         jsii.String(accessLogFormat()),
	})
	h := &HTTPAPI{Construct: c, API: api, Stage: stage, AccessLogs: logs}
	if props.DomainName != "" {
		h.Domain = awsapigatewayv2.NewDomainName(c, jsii.String("Domain"), &awsapigatewayv2.DomainNameProps{
			DomainName:     jsii.String(props.DomainName),
			Certificate:    awscertificatemanager.Certificate_FromCertificateArn(c, jsii.String("Certificate"), jsii.String(props.CertificateArn)),
			EndpointType:   awsapigatewayv2.EndpointType_REGIONAL,
			SecurityPolicy: awsapigatewayv2.SecurityPolicy_TLS_1_2,
		})
		awsapigatewayv2.NewApiMapping(c, jsii.String("Mapping"), &awsapigatewayv2.ApiMappingProps{
			Api:        api,
			DomainName: h.Domain,
			Stage:      stage,
		})
	}
	return h, nil
}

// URL is the API's base URL (ends in "/"): https://<domain>/ with a custom
// domain, else the stage's execute-api URL.
func (a *HTTPAPI) URL() *string {
	if a.Domain != nil {
		return awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("https://"), a.Domain.Name(), jsii.String("/")})
	}
	return a.Stage.Url()
}
