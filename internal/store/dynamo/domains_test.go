package dynamo_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// beforeTransact runs hook once, just before the first TransactWriteItems
// it forwards.
type beforeTransact struct {
	dynamo.API
	once sync.Once
	hook func(ctx context.Context)
}

func (b *beforeTransact) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	b.once.Do(func() { b.hook(ctx) })
	return b.API.TransactWriteItems(ctx, in, opts...)
}

// TestSendingDomainClaimsSerializeAcrossProcesses: two processes (Stores
// with their own locks on one table) claim a subdomain and its parent for
// two companies, the second committing between the first's reads and its
// transaction. The subdomain check was a read that is now stale; the
// claims' VERSION item is what makes the first transaction fail, and its
// retry then sees the parent taken.
func TestSendingDomainClaimsSerializeAcrossProcesses(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	table := awstest.Unique(t, "dispatcher")
	if err := dynamo.CreateTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTable(t, client, table) })
	other := dynamo.New(client, table)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	first, second := "co_"+uuid.NewString(), "co_"+uuid.NewString()
	for _, id := range []string{first, second} {
		if err := other.CreateCompany(ctx, comms.Company{ID: id, Credits: 1, Settings: comms.DefaultSettings(), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	declaring := func(d string) comms.Settings {
		s := comms.DefaultSettings()
		s.SendingDomains = []string{d}
		return s
	}
	var secondErr error
	api := &beforeTransact{API: client, hook: func(ctx context.Context) {
		secondErr = other.PutSettings(ctx, second, declaring("example.com"))
	}}
	err := dynamo.New(api, table).PutSettings(ctx, first, declaring("mail.example.com"))
	if secondErr != nil {
		t.Fatalf("the other process's claim of the parent: %v", secondErr)
	}
	if !errors.Is(err, comms.ErrSendingDomainTaken) {
		t.Fatalf("claiming the subdomain after the parent was claimed meanwhile: %v, want ErrSendingDomainTaken", err)
	}
	c, err := other.GetCompany(ctx, first)
	if err != nil || len(c.Settings.SendingDomains) != 0 {
		t.Fatalf("the refused company's settings: %+v, %v; want no sending domains", c.Settings, err)
	}
}
