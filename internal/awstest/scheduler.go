package awstest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
)

// CreateScheduleGroup creates a uniquely named EventBridge Scheduler group
// on the emulator and deletes it (with its schedules) when the test ends.
// Tests need their own group: moto answers a schedule in an unknown group
// with a 500, and FireDue fires a whole group.
func CreateScheduleGroup(t testing.TB, cfg aws.Config) string {
	t.Helper()
	client := scheduler.NewFromConfig(cfg)
	name := Unique(t, "g")
	if _, err := client.CreateScheduleGroup(context.Background(), &scheduler.CreateScheduleGroupInput{Name: aws.String(name)}); err != nil {
		t.Fatalf("scheduler.CreateScheduleGroup %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := client.DeleteScheduleGroup(context.Background(), &scheduler.DeleteScheduleGroupInput{Name: aws.String(name)}); err != nil {
			t.Logf("scheduler.DeleteScheduleGroup %s: %v", name, err)
		}
	})
	return name
}
