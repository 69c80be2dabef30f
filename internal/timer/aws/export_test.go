package aws

// Internals the external tests check, without widening the package's API.
var (
	RetryPolicy  = retryPolicy
	DefaultSleep = sleep
)
