package awstest

import (
	"context"
	"errors"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// FakeSecretID is the only secret id FakeSecrets answers for.
const FakeSecretID = "arn:secret"

// FakeSecrets is a hand-written Secrets Manager for tests: GetSecretValue
// of FakeSecretID answers the value Set last (or its error), and Reads
// counts the calls.
type FakeSecrets struct {
	mu    sync.Mutex
	value string
	err   error
	reads int
}

// GetSecretValue answers the secret's value, or the error Set gave.
func (f *FakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if aws.ToString(in.SecretId) != FakeSecretID {
		return nil, errors.New("wrong secret id " + aws.ToString(in.SecretId))
	}
	if f.err != nil {
		return nil, f.err
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(f.value)}, nil
}

// Set makes later reads answer value, or fail with err when it is not nil.
func (f *FakeSecrets) Set(value string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.value, f.err = value, err
}

// Reads is how many GetSecretValue calls were made.
func (f *FakeSecrets) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}
