package infra

import "testing"

// These tests never start jsii.

// Every SES event type the destination may publish has the EventBridge
// detail-type the rule matches, and no two share one.
func TestSESDetailTypes(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, e := range append(SESFeedbackEvents[:len(SESFeedbackEvents):len(SESFeedbackEvents)], SESEngagementEvents...) {
		dt, ok := sesDetailTypes[e]
		if !ok || dt == "" {
			t.Errorf("no detail-type for %s", e)
		}
		if seen[dt] {
			t.Errorf("detail-type %q twice", dt)
		}
		seen[dt] = true
	}
	if len(SESFeedbackEvents) != 7 || len(SESEngagementEvents) != 2 {
		t.Errorf("event types %v + %v", SESFeedbackEvents, SESEngagementEvents)
	}
}

func TestResolvedKeepsTrackOpensAndClicks(t *testing.T) {
	t.Parallel()
	root := dummyAssets(t)
	for _, on := range []bool{false, true} {
		p, err := (&DispatcherStackProps{Stage: "dev", SenderDomain: "example.com", AssetRoot: root, TrackOpensAndClicks: on}).Resolved()
		if err != nil || p.TrackOpensAndClicks != on {
			t.Errorf("TrackOpensAndClicks %v: got %v, %v", on, p.TrackOpensAndClicks, err)
		}
	}
}

func TestEventsFunctionContract(t *testing.T) {
	t.Parallel()
	if a := functionAccess[FnEvents]; a != (access{table: true}) {
		t.Errorf("events access %+v, want the table only", a)
	}
	if s := FunctionSizes[FnEvents]; s.MemoryMB != 256 || s.Timeout.Seconds() != 30 {
		t.Errorf("events size %+v", s)
	}
}
