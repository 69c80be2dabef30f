package awslocal

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/smithy-go"
)

// fakeGroups answers GetScheduleGroup and CreateScheduleGroup with the
// given errors and counts the creates.
type fakeGroups struct {
	getErr, createErr error
	creates           int
}

func (f *fakeGroups) GetScheduleGroup(context.Context, *scheduler.GetScheduleGroupInput, ...func(*scheduler.Options)) (*scheduler.GetScheduleGroupOutput, error) {
	if f.getErr != nil {
		return nil, f.getErr
	}
	return &scheduler.GetScheduleGroupOutput{}, nil
}

func (f *fakeGroups) CreateScheduleGroup(context.Context, *scheduler.CreateScheduleGroupInput, ...func(*scheduler.Options)) (*scheduler.CreateScheduleGroupOutput, error) {
	f.creates++
	if f.createErr != nil {
		return nil, f.createErr
	}
	return &scheduler.CreateScheduleGroupOutput{}, nil
}

// TestCreateScheduleGroupMatchesErrorsByType: only a typed
// ResourceNotFoundException means "create it", and only a typed
// ConflictException on create means "it exists"; the same codes in an
// error's text, or any other error, are not taken for them.
func TestCreateScheduleGroupMatchesErrorsByType(t *testing.T) {
	t.Parallel()
	op := func(err error) error {
		return &smithy.OperationError{ServiceID: "Scheduler", OperationName: "GetScheduleGroup", Err: err}
	}
	for _, tc := range []struct {
		name              string
		getErr, createErr error
		creates           int
		fails             bool
	}{
		{"exists", nil, nil, 0, false},
		{"absent", op(&schtypes.ResourceNotFoundException{}), nil, 1, false},
		{"created meanwhile", op(&schtypes.ResourceNotFoundException{}), op(&schtypes.ConflictException{}), 1, false},
		{"create refused", op(&schtypes.ResourceNotFoundException{}), op(&schtypes.ValidationException{}), 1, true},
		{"get refused", op(&smithy.GenericAPIError{Code: "AccessDeniedException"}), nil, 0, true},
		{"not-found only in the text", op(errors.New("ResourceNotFoundException: proxy said so")), nil, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeGroups{getErr: tc.getErr, createErr: tc.createErr}
			err := createScheduleGroup(context.Background(), f, "g")
			if (err != nil) != tc.fails || f.creates != tc.creates {
				t.Errorf("createScheduleGroup = %v after %d creates; want failure %v after %d", err, f.creates, tc.fails, tc.creates)
			}
		})
	}
}
