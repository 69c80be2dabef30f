package main

import (
	"strings"
	"testing"
)

// TestNotZero: a 0 given for a key whose prop reads 0 as "not set" is
// refused, naming the key; other values, and no value, pass on.
func TestNotZero(t *testing.T) {
	for _, key := range zeroMeansDefault {
		for _, v := range []string{"0", "0.0", "-0"} {
			if err := notZero(key, v); err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("notZero(%s, %q) = %v; want an error naming the key", key, v, err)
			}
		}
		for _, v := range []string{"", "1", "0.05", "-3", "abc"} {
			if err := notZero(key, v); err != nil {
				t.Errorf("notZero(%s, %q) = %v; want nil (parsed and validated later)", key, v, err)
			}
		}
	}
}
