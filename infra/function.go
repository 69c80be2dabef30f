package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

var (
	functionNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	envNameRe      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
)

// TracingActions are what a function with X-Ray active tracing may do.
var TracingActions = []string{"xray:PutTelemetryRecords", "xray:PutTraceSegments"}

// GoFunctionProps configures a GoFunction.
type GoFunctionProps struct {
	// FunctionName is the physical function name (1–64 of [A-Za-z0-9_-]).
	// Required: the dispatch function's ARN is built from it, so its own
	// environment can name it without a circular reference.
	FunctionName string
	// Description says what the function does.
	Description string
	// AssetDir is the directory holding the function's `bootstrap`
	// (a linux/arm64 Go binary). Required.
	AssetDir string
	// MemoryMB is the memory size (128–10240 MB).
	MemoryMB int
	// Timeout is the function timeout (whole seconds, 1 s – 15 min).
	Timeout time.Duration
	// Environment is the function's environment: names are the constants
	// of package internal/config.
	Environment map[string]*string
	// LogLevel is the application log level (debug, info, warn, error).
	LogLevel string
	// LogRetention is how long the function's log group keeps logs.
	LogRetention awslogs.RetentionDays
	// Retain keeps the log group when the stack is deleted.
	Retain bool
	// ReservedConcurrency, when > 0, reserves that many concurrent
	// executions of the account for the function, which is also its
	// maximum. Zero: none reserved (the account's unreserved pool).
	ReservedConcurrency int
	// AllowRecursiveLoop turns off Lambda's recursive loop detection, for
	// a function that re-arms itself through SQS on purpose.
	AllowRecursiveLoop bool
}

// GoFunction is a Go Lambda function on the provided.al2023 runtime for
// arm64, from a prebuilt `bootstrap`, with JSON logs in its own log group,
// X-Ray active tracing, and its own role that starts with no permission
// but writing to that log group and sending traces.
type GoFunction struct {
	// Construct is the scope holding the resources.
	Construct constructs.Construct
	// Function is the Lambda function.
	Function awslambda.Function
	// Role is the function's execution role.
	Role awsiam.Role
	// LogGroup holds the function's logs.
	LogGroup awslogs.LogGroup
	// Timeout is the function's timeout.
	Timeout time.Duration
}

// NewGoFunction creates the function, its role and its log group.
func NewGoFunction(scope constructs.Construct, id string, props *GoFunctionProps) (*GoFunction, error) {
	if err := props.validate(); err != nil {
		return nil, fmt.Errorf("infra.NewGoFunction %s: %w", id, err)
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	removal := awscdk.RemovalPolicy_DESTROY
	if props.Retain {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	logs := awslogs.NewLogGroup(c, jsii.String("Logs"), &awslogs.LogGroupProps{
		Retention:     props.LogRetention,
		RemovalPolicy: removal,
	})
	role := awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		Description: jsii.String("Execution role of Lambda function " + props.FunctionName + "."),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("Logs"),
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: &[]*string{logs.LogGroupArn()},
	}))
	// X-Ray active tracing: Lambda samples and sends a segment per
	// invocation. The permission is the one AWS's managed
	// AWSXRayDaemonWriteAccess reduces to for Lambda; X-Ray has no
	// resource-level permissions, so Resource is "*".
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("Tracing"),
		Actions:   jsii.Strings(TracingActions...),
		Resources: jsii.Strings("*"),
	}))
	recursion := awslambda.RecursiveLoop_TERMINATE
	if props.AllowRecursiveLoop {
		recursion = awslambda.RecursiveLoop_ALLOW
	}
	env := make(map[string]*string, len(props.Environment))
	for k, v := range props.Environment {
		env[k] = v
	}
	fn := awslambda.NewFunction(c, jsii.String("Function"), &awslambda.FunctionProps{
		FunctionName:          jsii.String(props.FunctionName),
		Description:           jsii.String(props.Description),
		Runtime:               awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:          awslambda.Architecture_ARM_64(),
		Handler:               jsii.String("bootstrap"),
		Code:                  awslambda.Code_FromAsset(jsii.String(props.AssetDir), nil),
		MemorySize:            jsii.Number(float64(props.MemoryMB)),
		Timeout:               awscdk.Duration_Seconds(jsii.Number(props.Timeout.Seconds())),
		Environment:           &env,
		Role:                  role,
		LogGroup:              logs,
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2: awslambda.ApplicationLogLevel(strings.ToUpper(props.LogLevel)),
		SystemLogLevelV2:      awslambda.SystemLogLevel_WARN,
		RecursiveLoop:         recursion,
	})
	cfn := fn.Node().DefaultChild().(awslambda.CfnFunction)
	// Set on the CloudFormation resource, not with the L2 Tracing prop,
	// which would add its own unnamed copy of the Tracing statement.
	cfn.SetTracingConfig(&awslambda.CfnFunction_TracingConfigProperty{Mode: jsii.String("Active")})
	if props.ReservedConcurrency > 0 {
		cfn.SetReservedConcurrentExecutions(jsii.Number(float64(props.ReservedConcurrency)))
	}
	// The CDK makes a function DependsOn its role and the role's policy,
	// so it never runs before its permissions exist; the role half repeats
	// the Role GetAtt, which cfn-lint (sam validate --lint) warns about.
	cfn.AddMetadata(jsii.String("cfn-lint"), map[string]interface{}{
		"config": map[string]interface{}{"ignore_checks": []string{"W3005"}},
	})
	return &GoFunction{Construct: c, Function: fn, Role: role, LogGroup: logs, Timeout: props.Timeout}, nil
}

func (p *GoFunctionProps) validate() error {
	if p == nil {
		return fmt.Errorf("props are required")
	}
	var bad []string
	if !functionNameRe.MatchString(p.FunctionName) {
		bad = append(bad, fmt.Sprintf("FunctionName %q: want 1-64 of [A-Za-z0-9_-]", p.FunctionName))
	}
	if st, err := os.Stat(filepath.Join(p.AssetDir, "bootstrap")); err != nil || !st.Mode().IsRegular() {
		bad = append(bad, fmt.Sprintf("AssetDir %q: no bootstrap file in it", p.AssetDir))
	}
	if p.MemoryMB < 128 || p.MemoryMB > 10240 {
		bad = append(bad, fmt.Sprintf("MemoryMB %d: want 128-10240", p.MemoryMB))
	}
	if p.Timeout < time.Second || p.Timeout > 15*time.Minute || p.Timeout%time.Second != 0 {
		bad = append(bad, fmt.Sprintf("Timeout %v: want whole seconds from 1s to 15m", p.Timeout))
	}
	switch p.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad = append(bad, fmt.Sprintf("LogLevel %q: want debug, info, warn or error", p.LogLevel))
	}
	if p.LogRetention == "" {
		bad = append(bad, "LogRetention is required")
	}
	if p.ReservedConcurrency < 0 {
		bad = append(bad, fmt.Sprintf("ReservedConcurrency %d: want 0 (none) or more", p.ReservedConcurrency))
	}
	names := make([]string, 0, len(p.Environment))
	for k := range p.Environment {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !envNameRe.MatchString(k) || strings.HasPrefix(k, "AWS_") {
			bad = append(bad, fmt.Sprintf("Environment: %q is not a name a function may set", k))
		} else if p.Environment[k] == nil {
			bad = append(bad, fmt.Sprintf("Environment: %s has no value", k))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}
