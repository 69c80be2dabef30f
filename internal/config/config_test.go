package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

func TestMetricsNamespace(t *testing.T) {
	t.Parallel()
	env := func(ns string) func(string) string {
		return func(k string) string {
			if k == config.EnvMetricsNamespace {
				return ns
			}
			return ""
		}
	}
	for ns, ok := range map[string]bool{
		"":                       true, // the default of internal/emf
		"Dispatcher/prod":        true,
		strings.Repeat("n", 255): true,
		strings.Repeat("n", 256): false,
		":Dispatcher":            false,
	} {
		c, err := config.LoadAWS(env(ns), config.Needs{})
		if (err == nil) != ok || (ok && c.MetricsNamespace != ns) {
			t.Errorf("LoadAWS with %s=%q: %q, %v", config.EnvMetricsNamespace, ns, c.MetricsNamespace, err)
		}
	}
}

func TestRetentionDays(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	for v, want := range map[string]time.Duration{
		"":     config.DefaultRetentionDays * day,
		"1":    day,
		"90":   90 * day,
		"3650": 3650 * day,
		"0":    -1,
		"3651": -1,
		"-5":   -1,
		"7d":   -1,
		"1.5":  -1,
	} {
		c, err := config.LoadAWS(func(k string) string {
			if k == config.EnvRetentionDays {
				return v
			}
			return ""
		}, config.Needs{})
		switch {
		case want < 0 && err == nil:
			t.Errorf("LoadAWS with %s=%q: no error", config.EnvRetentionDays, v)
		case want >= 0 && (err != nil || c.Retention != want):
			t.Errorf("LoadAWS with %s=%q: %v, %v; want %v", config.EnvRetentionDays, v, c.Retention, err, want)
		}
	}
}

func TestCompanyRateLimit(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := config.LoadAWS(env(nil), config.Needs{})
	if err != nil || c.RateLimit.Enabled() {
		t.Fatalf("unset: %v, %v; want no limit", c.RateLimit, err)
	}
	c, err = config.LoadAWS(env(map[string]string{config.EnvCompanyRateLimit: "25", config.EnvCompanyRateBurst: "50",
		config.EnvCompanyRateOverrides: "big=200/400"}), config.Needs{})
	if err != nil || c.RateLimit.For("x") != (ratelimit.Limit{Rate: 25, Burst: 50}) || c.RateLimit.For("big") != (ratelimit.Limit{Rate: 200, Burst: 400}) {
		t.Fatalf("set: %v, %v", c.RateLimit, err)
	}
	for _, bad := range []map[string]string{
		{config.EnvCompanyRateLimit: "25"},
		{config.EnvCompanyRateLimit: "fast", config.EnvCompanyRateBurst: "50"},
		{config.EnvCompanyRateBurst: "50"},
		{config.EnvCompanyRateLimit: "25", config.EnvCompanyRateBurst: "50", config.EnvCompanyRateOverrides: "big"},
	} {
		if _, err := config.LoadAWS(env(bad), config.Needs{}); err == nil || !strings.Contains(err.Error(), "DISPATCHER_COMPANY_RATE") {
			t.Errorf("%v: %v; want an error naming the variable", bad, err)
		}
	}
}

// TestLeases: the per-channel leases and the sweep grace are Go durations
// from MinLease to MaxLease; unset leaves them zero (the dispatcher's
// defaults), and a bad value is refused naming the variable.
func TestLeases(t *testing.T) {
	t.Parallel()
	for _, name := range []string{config.EnvLeaseEmail, config.EnvLeaseSMS, config.EnvLeaseVoice, config.EnvSweepGrace} {
		get := func(c config.AWS) time.Duration {
			return map[string]time.Duration{config.EnvLeaseEmail: c.EmailLease, config.EnvLeaseSMS: c.SMSLease,
				config.EnvLeaseVoice: c.VoiceLease, config.EnvSweepGrace: c.SweepGrace}[name]
		}
		for v, want := range map[string]time.Duration{
			"":      0,
			"30s":   30 * time.Second,
			"2m":    2 * time.Minute,
			"1s":    time.Second,
			"1h":    time.Hour,
			"999ms": -1,
			"61m":   -1,
			"0":     -1,
			"-5s":   -1,
			"30":    -1,
		} {
			c, err := config.LoadAWS(func(k string) string {
				if k == name {
					return v
				}
				return ""
			}, config.Needs{})
			switch {
			case want < 0 && (err == nil || !strings.Contains(err.Error(), name)):
				t.Errorf("LoadAWS with %s=%q: %v, want an error naming the variable", name, v, err)
			case want >= 0 && (err != nil || get(c) != want):
				t.Errorf("LoadAWS with %s=%q: %v, %v; want %v", name, v, get(c), err, want)
			}
		}
	}
}
