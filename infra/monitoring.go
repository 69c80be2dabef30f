package infra

import (
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// DefaultOldestMessageAge is the default threshold of the queue's
// age-of-oldest-message alarm. Fires wait on the queue for up to 15 minutes
// by design (SendMessage DelaySeconds), so the alarm sits above that.
const DefaultOldestMessageAge = 20 * time.Minute

// MonitoringProps configures Monitoring.
type MonitoringProps struct {
	// AlarmEmail is subscribed to the alarm topic when not empty.
	AlarmEmail string
	// Functions are alarmed on errors and throttles, by a short name
	// (at least one).
	Functions map[string]awslambda.IFunction
	// Queue is alarmed on the age of its oldest message. Required.
	Queue awssqs.IQueue
	// DeadLetterQueues are alarmed when not empty, by a short name (at
	// least one).
	DeadLetterQueues map[string]awssqs.IQueue
	// API's stage is alarmed on 5xx responses. Optional.
	API awsapigatewayv2.IHttpStage
	// OldestMessageAge is the queue alarm's threshold. Default:
	// DefaultOldestMessageAge.
	OldestMessageAge time.Duration
	// DashboardName names the dashboard. Required.
	DashboardName string
}

// Monitoring is the alarm topic, the alarms and a dashboard.
type Monitoring struct {
	// Construct is the scope holding the resources.
	Construct constructs.Construct
	// Topic receives every alarm's ALARM and OK transitions.
	Topic awssns.Topic
	// Alarms by construct id.
	Alarms map[string]awscloudwatch.Alarm
	// Dashboard shows the API, the functions and the queues.
	Dashboard awscloudwatch.Dashboard
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// NewMonitoring creates the topic, the alarms and the dashboard.
func NewMonitoring(scope constructs.Construct, id string, props *MonitoringProps) (*Monitoring, error) {
	if props == nil || props.Queue == nil || len(props.Functions) == 0 || len(props.DeadLetterQueues) == 0 {
		return nil, fmt.Errorf("infra.NewMonitoring: Queue, Functions and DeadLetterQueues are required")
	}
	if props.DashboardName == "" {
		return nil, fmt.Errorf("infra.NewMonitoring: DashboardName is required")
	}
	oldest := props.OldestMessageAge
	if oldest == 0 {
		oldest = DefaultOldestMessageAge
	}
	if oldest < time.Minute {
		return nil, fmt.Errorf("infra.NewMonitoring: OldestMessageAge %v: want at least 1m", oldest)
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	topic := awssns.NewTopic(c, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("Dispatcher alarms"),
		EnforceSSL:  jsii.Bool(true),
	})
	if props.AlarmEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(props.AlarmEmail), nil))
	}
	action := awscloudwatchactions.NewSnsAction(topic)
	m := &Monitoring{Construct: c, Topic: topic, Alarms: map[string]awscloudwatch.Alarm{}}
	alarm := func(id, description string, metric awscloudwatch.IMetric, threshold float64) {
		a := awscloudwatch.NewAlarm(c, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(action)
		a.AddOkAction(action)
		m.Alarms[id] = a
	}
	five := awscdk.Duration_Minutes(jsii.Number(5))
	one := awscdk.Duration_Minutes(jsii.Number(1))
	sum := func(p awscdk.Duration) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: p, Statistic: jsii.String("Sum")}
	}
	maxOf := func(p awscdk.Duration) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: p, Statistic: jsii.String("Maximum")}
	}

	var fnErrors, fnThrottles, fnDuration, fnInvocations []awscloudwatch.IMetric
	for _, name := range sortedKeys(props.Functions) {
		fn := props.Functions[name]
		title := titleCase(name)
		alarm(title+"Errors", "The "+name+" function failed at least once in 5 minutes (an error, a timeout or a crash).",
			fn.MetricErrors(sum(five)), 1)
		alarm(title+"Throttles", "The "+name+" function was throttled at least once in 5 minutes.",
			fn.MetricThrottles(sum(five)), 1)
		label := &awscloudwatch.MetricOptions{Label: jsii.String(name)}
		fnErrors = append(fnErrors, fn.MetricErrors(label))
		fnThrottles = append(fnThrottles, fn.MetricThrottles(label))
		fnInvocations = append(fnInvocations, fn.MetricInvocations(label))
		fnDuration = append(fnDuration, fn.MetricDuration(&awscloudwatch.MetricOptions{Label: jsii.String(name + " p99"), Statistic: jsii.String("p99")}))
	}
	var dlqDepth []awscloudwatch.IMetric
	for _, name := range sortedKeys(props.DeadLetterQueues) {
		q := props.DeadLetterQueues[name]
		alarm(titleCase(name)+"DLQNotEmpty", "The "+name+" dead-letter queue holds messages: fires that could not be delivered. Inspect and redrive them.",
			q.MetricApproximateNumberOfMessagesVisible(maxOf(one)), 1)
		dlqDepth = append(dlqDepth, q.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Label: jsii.String(name), Statistic: jsii.String("Maximum")}))
	}
	alarm("QueueOldestMessage", fmt.Sprintf("The dispatch queue's oldest message is older than %v: the dispatch function is not keeping up (or failing).", oldest),
		props.Queue.MetricApproximateAgeOfOldestMessage(maxOf(one)), oldest.Seconds())

	widgets := [][]awscloudwatch.IWidget{}
	if props.API != nil {
		alarm("ApiServerErrors", "The HTTP API returned at least 5 server errors (5xx) in 5 minutes.",
			props.API.MetricServerError(sum(five)), 5)
		widgets = append(widgets, []awscloudwatch.IWidget{
			graph("API requests and errors", []awscloudwatch.IMetric{
				props.API.MetricCount(&awscloudwatch.MetricOptions{Label: jsii.String("requests")}),
				props.API.MetricClientError(&awscloudwatch.MetricOptions{Label: jsii.String("4xx")}),
				props.API.MetricServerError(&awscloudwatch.MetricOptions{Label: jsii.String("5xx")}),
			}),
			graph("API latency p99 (ms)", []awscloudwatch.IMetric{
				props.API.MetricLatency(&awscloudwatch.MetricOptions{Label: jsii.String("latency"), Statistic: jsii.String("p99")}),
				props.API.MetricIntegrationLatency(&awscloudwatch.MetricOptions{Label: jsii.String("integration"), Statistic: jsii.String("p99")}),
			}),
		})
	}
	widgets = append(widgets,
		[]awscloudwatch.IWidget{graph("Function invocations", fnInvocations), graph("Function errors and throttles", append(fnErrors, fnThrottles...))},
		[]awscloudwatch.IWidget{graph("Function duration p99 (ms)", fnDuration), graph("Dead-letter queue depth", dlqDepth)},
		[]awscloudwatch.IWidget{graph("Dispatch queue", []awscloudwatch.IMetric{
			props.Queue.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Label: jsii.String("visible")}),
			props.Queue.MetricApproximateNumberOfMessagesDelayed(&awscloudwatch.MetricOptions{Label: jsii.String("delayed")}),
			props.Queue.MetricApproximateNumberOfMessagesNotVisible(&awscloudwatch.MetricOptions{Label: jsii.String("in flight")}),
		}), graph("Dispatch queue oldest message (s)", []awscloudwatch.IMetric{
			props.Queue.MetricApproximateAgeOfOldestMessage(&awscloudwatch.MetricOptions{Label: jsii.String("age"), Statistic: jsii.String("Maximum")}),
		})},
	)
	rows := make([]*[]awscloudwatch.IWidget, len(widgets))
	for i := range widgets {
		rows[i] = &widgets[i]
	}
	m.Dashboard = awscloudwatch.NewDashboard(c, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName:   jsii.String(props.DashboardName),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
		Widgets:         &rows,
	})
	return m, nil
}

func graph(title string, metrics []awscloudwatch.IMetric) awscloudwatch.IWidget {
	return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title:  jsii.String(title),
		Left:   &metrics,
		Width:  jsii.Number(12),
		Height: jsii.Number(6),
	})
}

// titleCase upper-cases the first letter of an ASCII name.
func titleCase(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
