package dynamo_test

import (
	"fmt"
	"strings"
	"testing"
)

// US East (N. Virginia) list prices used by the cost model, as published
// by AWS (DynamoDB on-demand after the November 2024 price cut; the others
// unchanged since 2023), taken on 2026-12-01 from the figures the issue
// quotes; check them against aws.amazon.com/<service>/pricing before
// quoting the dollars elsewhere. Free tiers are ignored.
const (
	priceWRU        = 0.625 / 1e6             // DynamoDB on-demand, per write request unit
	priceRRU        = 0.125 / 1e6             // DynamoDB on-demand, per read request unit
	priceLambdaReq  = 0.20 / 1e6              // Lambda, per request
	priceLambdaGBs  = 0.0000133334            // Lambda arm64, per GB-second
	priceSQS        = 0.40 / 1e6              // SQS standard, per request (64 KB chunk)
	priceScheduler  = 1.00 / 1e6              // EventBridge Scheduler, per invocation
	priceHTTPAPIReq = 1.00 / 1e6              // API Gateway HTTP API, per request (first 300 M)
	minutesPerMonth = 30 * 24 * 60            // 43,200: a once-a-minute schedule's invocations
	sqsPerMessage   = 3                       // SendMessage + ReceiveMessage + DeleteMessage, batches of one (the worst case)
	idleSQSPolls    = 5 * 3 * minutesPerMonth // an SQS event source's long polls of an idle queue: 5 pollers × 3 a minute (20 s waits), an estimate
)

// lambdaMemoryMB is each function's memory (infra/stack.go FunctionSizes;
// infra is not imported here, it pulls in the CDK).
var lambdaMemoryMB = map[string]float64{"api": 512, "dispatch": 512, "sweeper": 256, "events": 256, "webhooks": 256}

// Duration model (an estimate, not a measurement: nothing here runs on
// Lambda): a warm Go arm64 invocation takes lambdaBaseMS plus
// lambdaCallMS for each AWS call it waits for in sequence (in-region
// DynamoDB, SQS, Scheduler, SES p50 latencies are a few ms; 8 ms covers the
// SDK's signing and JSON). Lambda bills by the millisecond.
const (
	lambdaBaseMS = 3.0
	lambdaCallMS = 8.0
)

// lifecycleCost is what one lifecycle costs, by line.
type lifecycleCost struct {
	RRU, WRU                            float64
	Schedules, SQSRequests, APIReqs     float64
	Invocations, GBSeconds              float64
	dynamo, scheduler, sqs, lambda, api float64
}

func (c lifecycleCost) total() float64 { return c.dynamo + c.scheduler + c.sqs + c.lambda + c.api }

func invocationGBs(fn string, calls int) float64 {
	return lambdaMemoryMB[fn] / 1024 * (lambdaBaseMS + lambdaCallMS*float64(calls)) / 1000
}

func price(c lifecycleCost) lifecycleCost {
	c.dynamo = c.RRU*priceRRU + c.WRU*priceWRU
	c.scheduler = c.Schedules * priceScheduler
	c.sqs = c.SQSRequests * priceSQS
	c.lambda = c.Invocations*priceLambdaReq + c.GBSeconds*priceLambdaGBs
	c.api = c.APIReqs * priceHTTPAPIReq
	return c
}

// ours prices a measured lifecycle as this stack runs it.
func ours(ms []measured) lifecycleCost {
	var c lifecycleCost
	for _, m := range ms {
		c.RRU += m.use.RRU
		c.WRU += m.use.WRU()
		c.Schedules += float64(m.schedules)
		c.SQSRequests += float64(m.sqsMessages * sqsPerMessage)
		c.APIReqs += float64(m.apiRequests)
		if m.fn != "" {
			c.Invocations++
			c.GBSeconds += invocationGBs(m.fn, m.use.NCalls()+m.awsCalls)
		}
	}
	return price(c)
}

// polled prices the same lifecycle in the polling design the seed
// described: no Scheduler schedule and no SQS hop; the rows come due in a
// poller's query (its fixed cost is pollerFixed), which reads each due row
// from a status index (~1 KB, an eighth of a read unit, eventually
// consistent) and then does what dispatch does, inside the poller's
// invocation (so no request charge of its own).
func polled(ms []measured) lifecycleCost {
	var c lifecycleCost
	for _, m := range ms {
		if m.name == fireStep().name {
			c.RRU += 0.125 // the due row, read by the poller's query
			continue
		}
		c.RRU += m.use.RRU
		c.WRU += m.use.WRU()
		c.SQSRequests += float64(m.sqsMessages * sqsPerMessage)
		c.APIReqs += float64(m.apiRequests)
		if m.fn != "" {
			if !strings.HasPrefix(m.name, "dispatch") {
				c.Invocations++
			}
			c.GBSeconds += invocationGBs(m.fn, m.use.NCalls()+m.awsCalls)
		}
	}
	return price(c)
}

// fixedMonthly is what a design costs a month with no traffic: ours runs
// the sweeper every minute (8 by_due shard queries in parallel, half a read
// unit each at least) and keeps an SQS poller on the dispatch queue; the
// polling design runs its poller every minute (one query).
func fixedMonthly(polling bool) float64 {
	if polling {
		return price(lifecycleCost{Invocations: minutesPerMonth, RRU: 0.5 * minutesPerMonth,
			GBSeconds: minutesPerMonth * invocationGBs("dispatch", 1)}).total()
	}
	return price(lifecycleCost{Invocations: minutesPerMonth, RRU: 8 * 0.5 * minutesPerMonth, SQSRequests: idleSQSPolls,
		GBSeconds: minutesPerMonth * invocationGBs("sweeper", 1)}).total()
}

// TestCostModel prices one lifecycle of each kind from the units and
// calls measured on the emulator (measureLifecycles) and prints the tables
// BENCHMARKS.md quotes: run with -v.
func TestCostModel(t *testing.T) {
	all := measureLifecycles(t)
	var b strings.Builder
	fmt.Fprintf(&b, "\n| per 1 M lifecycles | RRU | WRU | DynamoDB | Scheduler | SQS | Lambda (req + GB-s) | API Gateway | **total** |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, lc := range lifecycleCases {
		c := ours(all[lc.name])
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | $%.2f | $%.2f | $%.2f | $%.2f (%.0f inv., %.3f GB-s) | $%.2f | **$%.2f** |\n",
			lc.name, c.RRU, c.WRU, c.dynamo*1e6, c.scheduler*1e6, c.sqs*1e6, c.lambda*1e6, c.Invocations, c.GBSeconds, c.api*1e6, c.total()*1e6)
		if c.total() <= 0 || c.WRU <= 0 {
			t.Errorf("%s: nothing measured", lc.name)
		}
	}
	fmt.Fprintf(&b, "\n| per month | design | fixed | 10 k | 1 M | 100 M |\n|---|---|---|---|---|---|\n")
	for _, lc := range lifecycleCases {
		for _, polling := range []bool{false, true} {
			name, c := "ours (Scheduler + SQS)", ours(all[lc.name])
			if polling {
				name, c = "polling every minute", polled(all[lc.name])
			}
			fixed := fixedMonthly(polling)
			fmt.Fprintf(&b, "| %s | %s | $%.2f |", lc.name, name, fixed)
			for _, n := range []float64{1e4, 1e6, 1e8} {
				fmt.Fprintf(&b, " $%.2f |", fixed+n*c.total())
			}
			b.WriteString("\n")
		}
	}
	t.Log(b.String())
}
