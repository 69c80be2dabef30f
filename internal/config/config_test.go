package config_test

import (
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/config"
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
