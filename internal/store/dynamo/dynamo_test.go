package dynamo_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
	"github.com/dispatcherhq/dispatcher/internal/store/storetest"
)

// newClient returns a client of the emulator, or skips (loudly) without one.
func newClient(t *testing.T) *dynamodb.Client {
	t.Helper()
	return dynamodb.NewFromConfig(awstest.Config(t), func(o *dynamodb.Options) {
		// Moto's error responses carry no X-Amz-Crc32 header, which the SDK
		// then checks against 0, logging a WARN for every failed condition
		// (aws/aws-sdk-go-v2#3545). Production clients keep the check.
		o.DisableValidateResponseChecksum = true
	})
}

// newStore returns a Store on a table of its own in the emulator, deleted
// when the test ends. It skips (loudly) without an emulator.
func newStore(t *testing.T) *dynamo.Store {
	t.Helper()
	client := newClient(t)
	table := awstest.Unique(t, "dispatcher")
	if err := dynamo.CreateTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTable(t, client, table) })
	return dynamo.New(client, table).WithRetention(retention) // as deployed: every write path with TTLs
}

// dropTable deletes the table and remembers it for TestMain's last look.
// A table already gone is fine (an SDK retry of a DeleteTable whose
// response was lost finds none).
func dropTable(t *testing.T, client *dynamodb.Client, table string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var gone *types.ResourceNotFoundException
	if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil && !errors.As(err, &gone) {
		t.Errorf("deleting table %s: %v", table, err)
	}
	dropped.Lock()
	dropped.tables[table] = client
	dropped.Unlock()
}

// dropped are the tables the tests deleted. Moto keeps running a request
// whose client gave up (PagingWhileInserting cancels its writers), and a
// transaction that then fails rolls back by restoring the copy of the table
// it took when it began — resurrecting a table deleted meanwhile. TestMain
// deletes them all once more at the end.
var dropped = struct {
	sync.Mutex
	tables map[string]*dynamodb.Client
}{tables: map[string]*dynamodb.Client{}}

// emulatorParallelism is how many subtests run at once when -parallel is
// not given: they wait on the emulator, not on this machine's CPUs.
const emulatorParallelism = 8

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit && runtime.GOMAXPROCS(0) < emulatorParallelism {
		_ = flag.Set("test.parallel", strconv.Itoa(emulatorParallelism))
	}
	code := m.Run()
	if len(dropped.tables) > 0 {
		time.Sleep(time.Second) // for the rollbacks of abandoned requests
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		for table, client := range dropped.tables {
			_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		}
		cancel()
	}
	os.Exit(code)
}

// TestConformance runs the store suite against the emulator, a table per
// subtest.
//
// Known moto flake, not a store bug: under load, moto (werkzeug, one
// connection per request) now and then loses a response it has already
// processed (the SDK sees "deserialization failed … use of closed network
// connection" on a 200) and the SDK retries the request. For a conditional
// write the retry then fails against the write's own first attempt, so a
// subtest reports "already exists" for a fresh id. DynamoDB makes retried
// TransactWriteItems idempotent through ClientRequestToken (filled in by the
// SDK); moto ignores it.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) comms.Store { return newStore(t) })
}

func TestCreateTableAcceptsItsOwnTable(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	table := awstest.Unique(t, "dispatcher")
	for range 2 {
		if err := dynamo.CreateTable(t.Context(), client, table); err != nil {
			t.Fatal(err)
		}
	}
	defer dropTable(t, client, table)

	out, err := client.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := out.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != dynamo.AttrTTL {
		t.Fatalf("TTL = %+v, want enabled on %s", out.TimeToLiveDescription, dynamo.AttrTTL)
	}
}

func TestCreateTableRefusesAnotherSchema(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	table := awstest.Unique(t, "dispatcher")
	in := dynamo.TableInput(table)
	in.GlobalSecondaryIndexes = in.GlobalSecondaryIndexes[:1]
	in.AttributeDefinitions = in.AttributeDefinitions[:4]
	if _, err := client.CreateTable(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	defer dropTable(t, client, table)
	if err := dynamo.CreateTable(t.Context(), client, table); err == nil {
		t.Fatal("CreateTable accepted a table without the by_due index")
	}
}
