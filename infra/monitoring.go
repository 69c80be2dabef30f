package infra

import (
	"fmt"
	"sort"
	"strings"
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

	"github.com/dispatcherhq/dispatcher/internal/emf"
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
	// MetricsNamespace is the CloudWatch namespace of the delivery metrics
	// the functions log (internal/emf). Default: emf.DefaultNamespace.
	MetricsNamespace string
	// PermanentFailureRatio is the threshold of each channel's
	// permanent-failure alarm, in (0, 1]. Default:
	// DefaultPermanentFailureRatio.
	PermanentFailureRatio float64
	// Feedback adds the delivery-feedback alarms and widgets. Optional.
	Feedback *FeedbackMonitoring
}

// FeedbackMonitoring is what the delivery-feedback alarms watch.
type FeedbackMonitoring struct {
	// Queue is the events queue (alarmed on the age of its oldest
	// message), DLQ its dead-letter queue and TargetDLQ the EventBridge
	// rule target's (both alarmed when not empty). Required.
	Queue, DLQ, TargetDLQ awssqs.IQueue
	// Function is the events function (its errors are on the dashboard;
	// pass it in Functions too for its alarms). Required.
	Function awslambda.IFunction
}

// Thresholds of the delivery-feedback alarms.
const (
	// SESBounceRateThreshold: SES reviews an account whose bounce rate
	// reaches 5 % and may pause sending at 10 %.
	SESBounceRateThreshold = 0.05
	// SESComplaintRateThreshold: SES reviews an account at a 0.1 %
	// complaint rate and may pause sending at 0.5 %.
	SESComplaintRateThreshold = 0.001
	// SMSFailureRatioThreshold: the alarm fires when more than 10 % of the
	// SMS delivery reports in the window say undeliverable or opted out.
	SMSFailureRatioThreshold = 0.1
	// EventsOldestMessageAge: SES events wait no longer than this on the
	// events queue before the alarm fires.
	EventsOldestMessageAge = 10 * time.Minute
	// ReputationPeriod is the window of the SES reputation and SMS failure
	// ratio alarms.
	ReputationPeriod = 15 * time.Minute
)

// SMSFailureExpression is the metric math of the SMS delivery-failure
// ratio over the DeliveryReports metrics of channel sms with ids delivered,
// undeliverable and opted_out: failures over all final reports; a window
// without reports is 0.
const SMSFailureExpression = "IF((FILL(delivered, 0) + FILL(undeliverable, 0) + FILL(opted_out, 0)) > 0, " +
	"(FILL(undeliverable, 0) + FILL(opted_out, 0)) / (FILL(delivered, 0) + FILL(undeliverable, 0) + FILL(opted_out, 0)), 0)"

// PermanentFailurePeriod is the window of the permanent-failure alarms:
// long enough that a few bounces among few sends are not a ratio worth a
// page, short enough to catch a systematic refusal within the quarter hour.
const PermanentFailurePeriod = 15 * time.Minute

// PermanentFailureExpression is the metric math of a channel's
// permanent-failure ratio, over the Deliveries metrics of that channel by
// result, whose ids are the results (emf.Results): permanent attempts over
// all attempts. FILL makes a result with no attempts count 0 rather than
// erase the period; a period without attempts is 0, not a division by
// zero.
func PermanentFailureExpression() string { return failureExpression("") }

// failureExpression is PermanentFailureExpression over metric ids prefix +
// result (a dashboard graph shows every channel, and ids are unique in a
// graph).
func failureExpression(prefix string) string {
	total := "(" + attemptsExpression(prefix) + ")"
	return "IF(" + total + " > 0, FILL(" + prefix + emf.ResultPermanent + ", 0) / " + total + ", 0)"
}

// attemptsExpression is the metric math of a channel's delivery attempts,
// the sum of its Deliveries over every result, with metric ids prefix +
// result.
func attemptsExpression(prefix string) string {
	terms := make([]string, len(emf.Results))
	for i, r := range emf.Results {
		terms[i] = "FILL(" + prefix + r + ", 0)"
	}
	return strings.Join(terms, " + ")
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
	ratio := props.PermanentFailureRatio
	if ratio == 0 {
		ratio = DefaultPermanentFailureRatio
	}
	if !validRatio(ratio) {
		return nil, fmt.Errorf("infra.NewMonitoring: PermanentFailureRatio %v: want a ratio in (0, 1]", ratio)
	}
	namespace := props.MetricsNamespace
	if namespace == "" {
		namespace = emf.DefaultNamespace
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
	alarmWhen := func(op awscloudwatch.ComparisonOperator, id, description string, metric awscloudwatch.IMetric, threshold float64) {
		a := awscloudwatch.NewAlarm(c, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: op,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(action)
		a.AddOkAction(action)
		m.Alarms[id] = a
	}
	alarm := func(id, description string, metric awscloudwatch.IMetric, threshold float64) {
		alarmWhen(awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, id, description, metric, threshold)
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
		alarm(titleCase(name)+"DLQNotEmpty", "The "+name+" dead-letter queue holds messages that could not be processed: list them with `dispatcher dlq inspect --queue <its name>` and replay them with `dispatcher dlq redrive` (docs/deploy.md, Dead-letter queues).",
			q.MetricApproximateNumberOfMessagesVisible(maxOf(one)), 1)
		dlqDepth = append(dlqDepth, q.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Label: jsii.String(name), Statistic: jsii.String("Maximum")}))
	}
	// Per channel: the share of delivery attempts that failed for good,
	// from the Deliveries metrics the functions log (internal/emf).
	window := awscdk.Duration_Seconds(jsii.Number(PermanentFailurePeriod.Seconds()))
	var failureRatios, attempts []awscloudwatch.IMetric
	for _, channel := range emf.Channels {
		// deliveries are the channel's Deliveries metrics by result, with
		// ids prefix + result.
		deliveries := func(prefix string) *map[string]awscloudwatch.IMetric {
			using := map[string]awscloudwatch.IMetric{}
			for _, result := range emf.Results {
				using[prefix+result] = awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
					Namespace:  jsii.String(namespace),
					MetricName: jsii.String(emf.MetricDeliveries),
					DimensionsMap: &map[string]*string{
						emf.DimensionChannel: jsii.String(channel),
						emf.DimensionResult:  jsii.String(result),
					},
					Statistic: jsii.String("Sum"),
					Period:    window,
				})
			}
			return &using
		}
		alarmWhen(awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, pascalCase(channel)+"PermanentFailures",
			fmt.Sprintf("More than %g %% of %s delivery attempts failed permanently in %v (bounces, refused addresses or numbers, a suspended sender): check the rows' last_error.",
				ratio*100, channel, PermanentFailurePeriod),
			awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
				Expression:   jsii.String(PermanentFailureExpression()),
				UsingMetrics: deliveries(""),
				Label:        jsii.String(channel + " permanent-failure ratio"),
				Period:       window,
			}), ratio)
		prefix := channel + "_"
		failureRatios = append(failureRatios, awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression:   jsii.String(failureExpression(prefix)),
			UsingMetrics: deliveries(prefix),
			Label:        jsii.String(channel),
			Period:       window,
		}))
		attempts = append(attempts, awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression:   jsii.String(attemptsExpression(prefix)),
			UsingMetrics: deliveries(prefix),
			Label:        jsii.String(channel),
			Period:       window,
		}))
	}
	alarm("QueueOldestMessage", fmt.Sprintf("The dispatch queue's oldest message is older than %v: the dispatch function is not keeping up (or failing).", oldest),
		props.Queue.MetricApproximateAgeOfOldestMessage(maxOf(one)), oldest.Seconds())

	widgets := [][]awscloudwatch.IWidget{}
	var feedbackWidgets [][]awscloudwatch.IWidget
	if f := props.Feedback; f != nil {
		if f.Queue == nil || f.DLQ == nil || f.TargetDLQ == nil || f.Function == nil {
			return nil, fmt.Errorf("infra.NewMonitoring: Feedback needs Queue, DLQ, TargetDLQ and Function")
		}
		feedbackWidgets = feedbackAlarms(f, namespace, alarm, alarmWhen, maxOf(one))
	}
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
	widgets = append(widgets, []awscloudwatch.IWidget{
		graph("Delivery attempts by channel", attempts),
		graph("Permanent-failure ratio by channel", failureRatios),
	})
	widgets = append(widgets, feedbackWidgets...)
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

// feedbackAlarms adds the delivery-feedback alarms and returns the
// dashboard rows of delivery outcomes by channel.
func feedbackAlarms(f *FeedbackMonitoring, namespace string, alarm func(id, description string, metric awscloudwatch.IMetric, threshold float64),
	alarmWhen func(op awscloudwatch.ComparisonOperator, id, description string, metric awscloudwatch.IMetric, threshold float64),
	maxOfMinute *awscloudwatch.MetricOptions) [][]awscloudwatch.IWidget {
	window := awscdk.Duration_Seconds(jsii.Number(ReputationPeriod.Seconds()))
	metric := func(namespace, name, statistic string, period awscdk.Duration, label string) awscloudwatch.Metric {
		mp := &awscloudwatch.MetricProps{
			Namespace:  jsii.String(namespace),
			MetricName: jsii.String(name),
			Statistic:  jsii.String(statistic),
			Period:     period,
		}
		// A label would make an alarm's metric a one-metric math query:
		// only the dashboard's metrics have one.
		if label != "" {
			mp.Label = jsii.String(label)
		}
		return awscloudwatch.NewMetric(mp)
	}
	// The account's SES reputation (AWS/SES, no dimension: every
	// configuration set and identity of the account and region).
	alarmWhen(awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, "SesBounceRate",
		fmt.Sprintf("The account's SES bounce rate is above %g %%: SES puts the account under review at 5 %% and may pause sending at 10 %%. Find the source of the bad addresses (rows with delivery_status bounced) and stop sending to them.", SESBounceRateThreshold*100),
		metric("AWS/SES", "Reputation.BounceRate", "Maximum", window, ""), SESBounceRateThreshold)
	alarmWhen(awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, "SesComplaintRate",
		fmt.Sprintf("The account's SES complaint rate is above %g %%: SES puts the account under review at 0.1 %% and may pause sending at 0.5 %%. Find which company's mail is marked as spam.", SESComplaintRateThreshold*100),
		metric("AWS/SES", "Reputation.ComplaintRate", "Maximum", window, ""), SESComplaintRateThreshold)
	// SMS: the share of SMS delivery reports that say the message did not
	// arrive, from the DeliveryReports metric the events function logs
	// (internal/emf) — SNS's own SMSSuccessRate exists only per country
	// and SMS type.
	reports := func(channel, prefix string, statuses []string, period awscdk.Duration) *map[string]awscloudwatch.IMetric {
		using := map[string]awscloudwatch.IMetric{}
		for _, s := range statuses {
			using[prefix+s] = awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace:  jsii.String(namespace),
				MetricName: jsii.String(emf.MetricDeliveryReports),
				DimensionsMap: &map[string]*string{
					emf.DimensionChannel:        jsii.String(channel),
					emf.DimensionDeliveryStatus: jsii.String(s),
				},
				Statistic: jsii.String("Sum"),
				Period:    period,
			})
		}
		return &using
	}
	alarmWhen(awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, "SmsDeliveryFailures",
		fmt.Sprintf("More than %g %% of the SMS delivery reports in %v say undeliverable or opted out: read the failure log group (sns/<region>/<account>/DirectPublishToPhoneNumber/Failure) for the carriers' reasons, and the rows with delivery_status undeliverable.", SMSFailureRatioThreshold*100, ReputationPeriod),
		awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression:   jsii.String(SMSFailureExpression),
			UsingMetrics: reports("sms", "", []string{"delivered", "undeliverable", "opted_out"}, window),
			Label:        jsii.String("SMS delivery-failure ratio"),
			Period:       window,
		}), SMSFailureRatioThreshold)
	alarm("EventsDLQNotEmpty", "The events dead-letter queue holds SES events the events function failed on 5 times: inspect them (and the function's logs), fix, and redrive them to the events queue.",
		f.DLQ.MetricApproximateNumberOfMessagesVisible(maxOfMinute), 1)
	alarm("FeedbackTargetDLQNotEmpty", "The feedback target dead-letter queue holds SES events EventBridge could not put on the events queue: check the events queue's policy and the message attributes (ERROR_CODE), then send them to the events queue.",
		f.TargetDLQ.MetricApproximateNumberOfMessagesVisible(maxOfMinute), 1)
	alarmWhen(awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, "EventsQueueOldestMessage",
		fmt.Sprintf("The events queue's oldest message is older than %v: the events function is not keeping up (or failing).", EventsOldestMessageAge),
		f.Queue.MetricApproximateAgeOfOldestMessage(maxOfMinute), EventsOldestMessageAge.Seconds())

	five := awscdk.Duration_Minutes(jsii.Number(5))
	var ses []awscloudwatch.IMetric
	for _, name := range []string{"Send", "Delivery", "Bounce", "Complaint"} {
		ses = append(ses, metric("AWS/SES", name, "Sum", five, name))
	}
	label := func(l string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Label: jsii.String(l)}
	}
	outcomes := func(channel string) []awscloudwatch.IMetric {
		var ms []awscloudwatch.IMetric
		for _, s := range emf.DeliveryStatuses {
			ms = append(ms, awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace:  jsii.String(namespace),
				MetricName: jsii.String(emf.MetricDeliveryReports),
				DimensionsMap: &map[string]*string{
					emf.DimensionChannel:        jsii.String(channel),
					emf.DimensionDeliveryStatus: jsii.String(s),
				},
				Statistic: jsii.String("Sum"),
				Period:    five,
				Label:     jsii.String(s),
			}))
		}
		return ms
	}
	return [][]awscloudwatch.IWidget{
		{graph("Email delivery outcomes (Dispatcher's reports)", outcomes("email")), graph("SMS delivery outcomes (Dispatcher's reports)", outcomes("sms"))},
		{graph("Email delivery outcomes (SES, account)", ses)},
		{graph("Events function", []awscloudwatch.IMetric{
			f.Function.MetricInvocations(label("invocations")),
			f.Function.MetricErrors(label("errors")),
			f.Function.MetricThrottles(label("throttles")),
		}), graph("Events queues", []awscloudwatch.IMetric{
			f.Queue.MetricApproximateNumberOfMessagesVisible(label("visible")),
			f.Queue.MetricApproximateAgeOfOldestMessage(&awscloudwatch.MetricOptions{Label: jsii.String("oldest (s)"), Statistic: jsii.String("Maximum")}),
			f.DLQ.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Label: jsii.String("events DLQ"), Statistic: jsii.String("Maximum")}),
			f.TargetDLQ.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Label: jsii.String("target DLQ"), Statistic: jsii.String("Maximum")}),
		})},
	}
}

func graph(title string, metrics []awscloudwatch.IMetric) awscloudwatch.IWidget {
	return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title:  jsii.String(title),
		Left:   &metrics,
		Width:  jsii.Number(12),
		Height: jsii.Number(6),
	})
}

// pascalCase joins the words of a snake_case ASCII name, each title-cased:
// "voice_call" → "VoiceCall".
func pascalCase(s string) string {
	words := strings.Split(s, "_")
	for i, w := range words {
		words[i] = titleCase(w)
	}
	return strings.Join(words, "")
}

// titleCase upper-cases the first letter of an ASCII name.
func titleCase(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
